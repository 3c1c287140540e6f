from channels.email.parse import parse  # noqa: F401
