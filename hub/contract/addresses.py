"""The kinds of address customers reach us from, and normalising them, so one person is one
identity per kind.

Merges happen only on an exact normalised match (never on a display name): a wrong merge shows one
customer's history to another.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

import idna
import phonenumbers

from hub.contract.errors import RejectedInput
from hub.contract.i18n import N_


class IdentityKind(StrEnum):
    email = "email"
    telegram = "telegram"
    phone = "phone"
    web = "web"


# The identity kind each channel's sender address is, where the channel fixes it.
CHANNEL_IDENTITY_KIND: dict[str, IdentityKind] = {
    "email": IdentityKind.email,
    "telegram": IdentityKind.telegram,
    "voice": IdentityKind.phone,
}


def identity_kind(channel: str, address: str, declared: str | None = None) -> IdentityKind:
    """The kind of a sender address: declared by the caller, fixed by the channel, or recognised."""
    if declared:
        try:
            return IdentityKind(declared)
        except ValueError:
            raise RejectedInput(
                f"unknown sender kind {declared!r}; use one of: {', '.join(k.value for k in IdentityKind)}"
            ) from None
    if channel in CHANNEL_IDENTITY_KIND:
        return CHANNEL_IDENTITY_KIND[channel]
    stripped = address.strip()
    if "@" in stripped:
        return IdentityKind.email
    if stripped.startswith("+") and stripped[1:].replace(" ", "").replace("-", "").isdigit():
        return IdentityKind.phone
    return IdentityKind.web


def normalise_email(address: str) -> str:
    """Lowercase, domain IDNA-encoded: 'Ana@Bücher.Example' -> 'ana@xn--bcher-kva.example'."""
    value = address.strip().strip("<>").strip()
    local, sep, domain = value.rpartition("@")
    if not sep or not local or not domain or any(c.isspace() for c in value):
        raise RejectedInput(N_("%(address)s is not an email address"), params={"address": repr(address)})
    try:
        ascii_domain = _ascii_domain(domain.rstrip("."))
    except idna.IDNAError as exc:
        raise RejectedInput(N_("%(address)s has an invalid domain: %(detail)s"), params={"address": repr(address), "detail": str(exc)}) from None
    return f"{local.lower()}@{ascii_domain}"


@lru_cache(maxsize=4096)
def _ascii_domain(domain: str) -> str:
    # IDNA with UTS 46 mapping costs ~50 µs a domain; customers' domains repeat (a few big mail
    # providers, the same companies): remember them. Invalid domains raise, and are not cached.
    return idna.encode(domain, uts46=True).decode("ascii").lower()


def normalise_phone(address: str, default_region: str | None = None) -> str:
    """E.164: '+44 20 7946 0958' -> '+442079460958'. Without '+', default_region must be set."""
    try:
        number = phonenumbers.parse(address, default_region)
    except phonenumbers.NumberParseException as exc:
        if default_region:
            raise RejectedInput(N_("%(address)s is not a phone number: %(detail)s"), params={"address": repr(address), "detail": str(exc)}) from None
        raise RejectedInput(N_("%(address)s is not a phone number: %(detail)s (include the country code, e.g. +44...)"),
                            params={"address": repr(address), "detail": str(exc)}) from None
    if not phonenumbers.is_possible_number(number):
        raise RejectedInput(N_("%(address)s is not a possible phone number"), params={"address": repr(address)})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_telegram(address: str) -> str:
    value = address.strip()
    if not value.lstrip("-").isdigit():
        raise RejectedInput(N_("%(address)s is not a Telegram user id (digits)"), params={"address": repr(address)})
    return str(int(value))


def normalise_web(address: str) -> str:
    value = address.strip()
    if not value or len(value) > 320:
        raise RejectedInput(N_("a web visitor address must have 1 to 320 characters"))
    return value


def normalise(kind: IdentityKind, address: str, *, phone_region: str | None = None) -> str:
    if kind is IdentityKind.email:
        return normalise_email(address)
    if kind is IdentityKind.phone:
        return normalise_phone(address, phone_region)
    if kind is IdentityKind.telegram:
        return normalise_telegram(address)
    return normalise_web(address)
