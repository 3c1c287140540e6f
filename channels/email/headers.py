"""Header values -> text, addresses and Message-IDs, leniently.

Values come from the parser raw: 8-bit bytes survive as surrogate escapes, RFC 2047 encoded words
are still encoded. Decoding is done here rather than by email.headerregistry, which raises on
some malformed headers, reads unknown charsets as replacement characters and splits a multi-byte
character cut across two encoded words.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime

from channels.email.charsets import decode, decode_header_bytes

# An encoded word "=?charset?B|Q?payload?=". The payload runs to the first "?=" (a "?" inside is
# tolerated, as broken mailers send one) but never over the start of another word ("=?" other than
# base64 padding before "?="): a word that never ends would otherwise be scanned to the end of the
# value from every "=?" in it.
_ENCODED_WORD = re.compile(r"=\?([^?\s]*+)\?([bBqQ])\?((?:[^?=]|=(?!\?(?!=))|\?(?!=))*+)\?=", re.S)
_BETWEEN_WORDS = re.compile(r"(\?=)\s+(?==\?)")
_FOLD = re.compile(r"\r?\n(?=[ \t])|\r?\n$")
_SURROGATES = re.compile("[\udc80-\udcff]")
_QP_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")
_MSGID = re.compile(r"<([^<>]+)>")
# An address in broken header syntax. It starts only where a run of local-part characters starts:
# tried inside a run, it would rescan the rest of the run from every character of it.
_BARE_ADDR = re.compile(
    r"(?<![\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]++@(?:[\w.-]+\.[\w-]+|\[[\d.:a-fA-F]+\])", re.U
)


def unfold(value: str) -> str:
    return _FOLD.sub("", value)


def raw_to_text(value: str, hint: str | None = None) -> tuple[str, bool]:
    """A raw header value as the parser left it (8-bit bytes as surrogate escapes) -> str,
    without touching RFC 2047 encoded words. Returns (text, fallback_used)."""
    if not _SURROGATES.search(value):
        return value, False
    data = value.encode("ascii", "surrogateescape")
    return decode_header_bytes(data, hint)


def _word_bytes(encoding: str, payload: str) -> bytes | None:
    if encoding in "bB":
        cleaned = re.sub(r"[^A-Za-z0-9+/]", "", payload)
        cleaned += "=" * (-len(cleaned) % 4)
        try:
            return base64.b64decode(cleaned)
        except (binascii.Error, ValueError):
            return None
    data = payload.replace("_", " ").encode("ascii", "surrogateescape")
    return _QP_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), data)


def decode_words(value: str) -> tuple[str, bool]:
    """Decode RFC 2047 encoded words in a (str) header value. Adjacent words in one charset are
    joined before decoding, so a character split between them survives. Returns (text, fallback)."""
    if "=?" not in value:
        return value, False
    value = _BETWEEN_WORDS.sub(r"\1", value)
    out: list[str] = []
    fallback = False
    pending: list[bytes] = []
    pending_charset: str | None = None
    pos = 0

    def flush() -> None:
        nonlocal pending, pending_charset, fallback
        if pending:
            text, fb = decode(b"".join(pending), pending_charset)
            fallback = fallback or fb
            out.append(text)
        pending, pending_charset = [], None

    for match in _ENCODED_WORD.finditer(value):
        charset, encoding, payload = match.groups()
        if match.start() > pos:
            flush()
            out.append(value[pos : match.start()])
        data = _word_bytes(encoding, payload)
        if data is None:
            flush()
            out.append(match.group(0))
        else:
            charset = charset.split("*", 1)[0].lower()
            if pending and charset != pending_charset:
                flush()
            pending_charset = charset
            pending.append(data)
        pos = match.end()
    flush()
    out.append(value[pos:])
    return "".join(out), fallback


def header_text(value: str | None, hint: str | None = None) -> tuple[str, bool]:
    """A whole unstructured header (Subject, a display name): raw bytes and encoded words decoded,
    folding and control characters removed."""
    if value is None:
        return "", False
    text, fb1 = raw_to_text(unfold(value), hint)
    text, fb2 = decode_words(text)
    return clean_line(text), fb1 or fb2


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_line(text: str) -> str:
    return _CONTROL.sub("", text.replace("\r", "").replace("\n", " ").replace("\t", " ")).strip()


def addresses(values: list[str], hint: str | None = None) -> tuple[list[tuple[str, str]], bool]:
    """(display name, address) pairs of address headers. Names are decoded after the address list
    is split, so an encoded comma in a name cannot split it."""
    out: list[tuple[str, str]] = []
    fallback = False
    for raw in values:
        text, fb = raw_to_text(unfold(raw), hint)
        fallback = fallback or fb
        try:
            pairs = getaddresses([text])
        except Exception:  # noqa: BLE001 - the stdlib's address parser has had crashers
            pairs = []
        found = False
        for name, addr in pairs:
            addr = addr.strip().strip("<>").strip()
            if "@" not in addr:
                continue
            name, fb = decode_words(name)
            fallback = fallback or fb
            out.append((clean_line(name).strip("\"' "), addr))
            found = True
        if not found:
            # Broken syntax (unbalanced quotes, 8-bit junk): take what looks like an address.
            for addr in _BARE_ADDR.findall(text):
                out.append(("", addr))
    return out, fallback


def message_ids(value: str | None) -> list[str]:
    """Message-IDs in a header, angle brackets kept, whitespace inside removed."""
    if not value:
        return []
    value = unfold(value)
    found = ["<" + "".join(m.split()) + ">" for m in _MSGID.findall(value)]
    found = [m for m in found if len(m) > 2 and _SURROGATES.search(m) is None]
    if not found:
        # Clients that forget the brackets: a lone token with an @ is still an id.
        token = value.strip()
        if "@" in token and not any(c.isspace() for c in token) and not _SURROGATES.search(token):
            found = ["<" + token.strip("<>") + ">"]
    return found


def date(value: str | None) -> datetime | None:
    """An aware datetime from a Date header; None when it cannot be read or is absurd."""
    if not value:
        return None
    text = clean_line(raw_to_text(unfold(value))[0])
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError, AttributeError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if not 1970 <= when.year <= 2200:
        return None
    return when
