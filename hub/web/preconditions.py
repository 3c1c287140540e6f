"""Conditional requests on a versioned record: its ETag, and the version an If-Match names.

The ETag is weak, W/"<version>": it names the version of the record's own fields (a
conversation's status, priority, assignee...), while the body of GET also carries things that
change without it (its messages and their delivery). If-Match is compared on that version, so
the tag a client got from GET or from an earlier change guards the change it makes now.
"""

from __future__ import annotations

import re

from hub.web.errors import BadRequest

MAX_VERSION = 2_147_483_647
_TAG = re.compile(r'\s*(?:W/)?"(\d{1,10})"\s*')
HOW = 'If-Match must be "*" or one entity tag from the ETag this hub gave, like W/"7"'


def etag(version: int) -> str:
    return f'W/"{version}"'


def expected_version(if_match: str | None, body_version: int | None) -> int | None:
    """The version a change was made on, from If-Match and/or the body's version field; None: no
    precondition (If-Match absent or "*": the record exists, which the change finds out itself)."""
    from_header = _from_if_match(if_match)
    if from_header is not None and body_version is not None and from_header != body_version:
        raise BadRequest(f"If-Match names version {from_header} and the body version {body_version}; send one, or the same")
    return from_header if from_header is not None else body_version


def _from_if_match(raw: str | None) -> int | None:
    if raw is None or raw.strip() == "*":
        return None
    if len(raw) > 200:
        raise BadRequest(HOW)
    match = _TAG.fullmatch(raw)
    if match is None:
        raise BadRequest(HOW + (" (a list of several is not accepted)" if "," in raw else ""))
    version = int(match.group(1))
    if not 1 <= version <= MAX_VERSION:
        raise BadRequest(HOW + " (no version of a record is 0 or that large)")
    return version
