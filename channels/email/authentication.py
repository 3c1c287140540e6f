"""Whether the receiving mail server vouched for the sender's address (RFC 8601 Authentication-Results).

A From header is whatever the sender typed. The server that received the mail checked DKIM and
DMARC and wrote what it found in an Authentication-Results header named by its authserv-id; the
hub trusts that header, and only that one, when the operator names the server in the settings
(email.trusted_authserv_id). Anybody can add an Authentication-Results header to a mail they
send, with any authserv-id, so:
- headers of any other authserv-id are ignored;
- of those with ours, only the topmost counts: the receiving server adds its own on top (and a
  server set up as RFC 8601 section 5 says removes copies claiming its id from incoming mail);
- a pass counts only aligned with the From domain: dmarc=pass for header.from equal to it, or
  dkim=pass signed by that domain (or a parent of it, relaxed alignment).

Bounded: at most MAX_HEADERS headers of MAX_HEADER_CHARS each are read; linear in their length.
"""

from __future__ import annotations

import re

MAX_HEADERS = 50
MAX_HEADER_CHARS = 8000

_COMMENT = re.compile(r"\([^()]*\)")
_PROPERTY = re.compile(r"([A-Za-z0-9_.-]+)\s*=\s*(\"[^\"]*\"|[^\s;]+)")


def _clean(value: str) -> str:
    value = value[:MAX_HEADER_CHARS].replace("\r", " ").replace("\n", " ")
    # comments may nest a little ("(good signature (rsa))"); a few passes take them out
    for _ in range(3):
        value, n = _COMMENT.subn(" ", value)
        if not n:
            break
    return value


def results(value: str) -> tuple[str, list[dict[str, str]]]:
    """(authserv-id, [{"method", "result", properties...}]) of one header value."""
    parts = [p.strip() for p in _clean(value).split(";")]
    authserv = parts[0].split()[0].lower() if parts and parts[0].split() else ""
    out = []
    for part in parts[1:]:
        pairs = _PROPERTY.findall(part)
        if not pairs:
            continue
        method, result = pairs[0]
        entry = {"method": method.lower(), "result": result.strip('"').lower()}
        for key, val in pairs[1:]:
            entry[key.lower()] = val.strip('"').lower()
        out.append(entry)
    return authserv, out


def _aligned(signing: str | None, from_domain: str) -> bool:
    if not signing:
        return False
    signing = signing.split("@")[-1].strip(".")
    return bool(signing) and (from_domain == signing or from_domain.endswith("." + signing))


def sender_verified(header_values: list[str], from_address: str | None, authserv_id: str | None) -> bool:
    """True when the topmost Authentication-Results header of the trusted server says the From
    address's domain passed DMARC, or DKIM aligned with it. header_values: the message's
    Authentication-Results headers, topmost first."""
    if not authserv_id or not from_address or "@" not in from_address:
        return False
    from_domain = from_address.rsplit("@", 1)[1].strip().lower().strip(".")
    wanted = authserv_id.strip().lower()
    for value in header_values[:MAX_HEADERS]:
        authserv, found = results(value)
        if authserv != wanted:
            continue
        for r in found:
            if r["result"] != "pass":
                continue
            if r["method"] == "dmarc" and r.get("header.from", "").strip(".") == from_domain:
                return True
            if r["method"] == "dkim" and (_aligned(r.get("header.d"), from_domain) or _aligned(r.get("header.i"), from_domain)):
                return True
        return False  # the topmost of the trusted server's decides
    return False
