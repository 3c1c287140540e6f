"""POST /api/v1/calls: phone calls with their transcripts (being built)."""


def add_routes(app) -> None:
    return None
