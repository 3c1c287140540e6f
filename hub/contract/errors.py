"""Failures a caller can act on. The web layer maps each to one HTTP status, once (hub/web/errors.py)."""

from __future__ import annotations


class HubError(Exception):
    """Base: `code` is stable for clients, the message is for a person.

    The message is written in English; where a person reads it in their language (the inbox), it
    is translated there from its parts: `template`, the English with %(name)s placeholders (marked
    with N_ so the catalogs have it), and `params`, the values put in. `message` is the English
    sentence with the values in (logs, the API). A value that is itself interface text (a field's
    name) is an i18n.Word and is translated too; every other value (an address, a name) is shown
    as it is."""

    code = "error"

    def __init__(self, message: str, *, detail: object | None = None, params: dict | None = None):
        self.template = message
        self.params = dict(params) if params else {}
        self.message = message % self.params if self.params else message
        super().__init__(self.message)
        self.detail = detail


class RejectedInput(HubError):
    """The input can never be accepted as it is (malformed address, unknown channel...)."""

    code = "rejected_input"


class UnreadableInput(RejectedInput):
    """Text that is not text: control characters (NUL...) or broken Unicode where words go. The
    request is malformed (400), not merely unacceptable."""

    code = "bad_request"


class NotFound(HubError):
    code = "not_found"


class Conflict(HubError):
    """The request contradicts the current state (merging a customer into itself...)."""

    code = "conflict"


class StaleVersion(Conflict):
    """A change was made on an older version of a record than the stored one: someone (or the hub
    itself) changed it meanwhile, and nothing was written. `detail` holds the current state:
    look at it and make the change again if it still holds."""

    code = "stale_version"


class Unauthenticated(HubError):
    code = "unauthenticated"


class PermissionDenied(HubError):
    code = "forbidden"


class TooManyRequests(HubError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, params: dict | None = None):
        super().__init__(message, params=params)
        self.retry_after = retry_after


class ConfigError(ValueError):
    """The settings cannot work as they are (a webhook bot without a secret...): say what to change."""
