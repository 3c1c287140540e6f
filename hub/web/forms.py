"""Public web forms at /forms/{slug} (being built)."""


def add_routes(app) -> None:
    return None
