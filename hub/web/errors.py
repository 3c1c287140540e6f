"""HubError -> HTTP status, mapped once here; every error body is {"error": {"code", "message"}}."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from hub.contract import errors
from hub.gateway import ChannelNotConfigured

log = logging.getLogger(__name__)

class BadRequest(errors.HubError):
    """The request cannot be read at all (not JSON, not an object, a malformed path id)."""

    code = "bad_request"


class ValidationFailed(errors.HubError):
    """The JSON was read but a field is missing, of the wrong type or out of range."""

    code = "validation_error"


class TooLarge(errors.HubError):
    """The body is over what this route accepts: the message names the limit and the setting."""

    code = "payload_too_large"


STATUS = {
    BadRequest: 400,
    TooLarge: 413,
    ValidationFailed: 422,
    errors.UnreadableInput: 400,
    errors.RejectedInput: 422,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    errors.TooManyRequests: 429,
    ChannelNotConfigured: 422,
}


def error_response(status: int, code: str, message: str, detail=None, headers=None) -> web.Response:
    body: dict = {"code": code, "message": message}
    if detail is not None:
        body["detail"] = detail
    return web.Response(
        status=status, text=json.dumps({"error": body}), content_type="application/json", headers=headers
    )


def from_hub_error(exc: errors.HubError, message: str | None = None) -> web.Response:
    """The JSON answer for a HubError: its status, code and `message` (the English one unless a
    page's shell gives it in the reader's language; the API's clients get English)."""
    status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
    headers = None
    if isinstance(exc, errors.TooManyRequests):
        headers = {"Retry-After": str(max(1, int(exc.retry_after + 0.999)))}
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="servicehub"'}
    return error_response(status, exc.code, exc.message if message is None else message, exc.detail, headers)


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def from_http_exception(exc: web.HTTPException) -> web.Response:
    code = _HTTP_CODES.get(exc.status, "http_error")
    message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
    if exc.status == 413:
        message = "the request body is larger than this hub accepts (SERVICEHUB_MAX_REQUEST_BYTES)"
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
    return error_response(exc.status, code, message, headers=headers or None)
