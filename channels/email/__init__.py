"""The email channel. PROVISIONAL: the SMTP receiver, IMAP poller and SMTP sender are being built."""

from channels.email.parse import parse  # noqa: F401


def from_settings(settings):
    return None
