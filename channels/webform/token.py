"""The form token: proof that a submission comes from a form page this hub served, and when.

A token is "v1.<nonce>.<issued>.<signature>": a random nonce, the issue time (unix seconds) and an
HMAC-SHA256 over the form's slug, the nonce and the time, with a server secret. It is a hidden
field of the page, not a cookie: an embedded form lives in a third-party iframe, where browsers
block cookies. It serves three purposes:
- CSRF: another site cannot forge one, so it cannot make a visitor's browser post to the hub;
- bots: the issue time gives the minimum fill time without any server state;
- idempotency: the nonce names the submission, so posting the same page twice (a refresh, the
  back button, a double click) is stored once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from hub.contract import clock
from hub.contract.signing import load_or_create_secret  # noqa: F401 - the installation secret, kept one way

VERSION = "v1"
MAX_AGE_SECONDS = 24 * 3600
# A clock a little ahead on another web worker must not make a fresh token look forged.
CLOCK_SKEW_SECONDS = 60


class TokenInvalid(Exception):
    """The token is missing, malformed, for another form or not signed with this hub's secret."""


@dataclass(frozen=True)
class FormToken:
    value: str
    nonce: str
    issued_at: int

    def age(self, now: float | None = None) -> float:
        return (clock.timestamp() if now is None else now) - self.issued_at

    def expired(self, now: float | None = None) -> bool:
        return self.age(now) > MAX_AGE_SECONDS

    @property
    def submission_id(self) -> str:
        """The submission's external id: one per served page, whatever is posted with it."""
        return f"form-{self.nonce}"


def _sign(secret: bytes, slug: str, nonce: str, issued: int) -> str:
    mac = hmac.new(secret, f"{VERSION}|{slug}|{nonce}|{issued}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def issue(secret: bytes, slug: str, now: float | None = None) -> FormToken:
    nonce = secrets.token_urlsafe(16)
    issued = int(clock.timestamp() if now is None else now)
    value = f"{VERSION}.{nonce}.{issued}.{_sign(secret, slug, nonce, issued)}"
    return FormToken(value, nonce, issued)


def verify(secret: bytes, slug: str, value: str | None, now: float | None = None) -> FormToken:
    """The token if this hub signed it for this form. Expiry is left to the caller: an expired
    token is still authentic, and the visitor's typing deserves a re-render, not a refusal."""
    if not value or len(value) > 200:
        raise TokenInvalid("missing")
    parts = value.split(".")
    if len(parts) != 4 or parts[0] != VERSION:
        raise TokenInvalid("malformed")
    _, nonce, issued_raw, signature = parts
    if not issued_raw.isdigit() or not nonce:
        raise TokenInvalid("malformed")
    issued = int(issued_raw)
    if not hmac.compare_digest(signature, _sign(secret, slug, nonce, issued)):
        raise TokenInvalid("bad signature")
    if issued > (clock.timestamp() if now is None else now) + CLOCK_SKEW_SECONDS:
        raise TokenInvalid("issued in the future")
    return FormToken(value, nonce, issued)
