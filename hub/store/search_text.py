"""What people type into a search box (`q=` of the inbox, the API, the knowledge base), checked
once before it reaches a store; and every query parameter of every route, checked by the web
app's middleware (hub/web/app.py) for the same characters.

A NUL cannot be in a PostgreSQL text parameter at all (the driver refuses it, which looked like the
store being down), and no control character belongs in a search: such a query is a malformed
request, refused with a message that says so. Tabs and line breaks (a pasted snippet) are spaces.
"""

from __future__ import annotations

import re

from hub.contract.errors import UnreadableInput

MAX_QUERY = 200
_SPACES = str.maketrans({"\t": " ", "\n": " ", "\r": " "})
# Unicode's control characters (C0, DEL, C1) but tab and line breaks, and unpaired surrogates.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def refuse_control_characters(value: str, name: str) -> None:
    """UnreadableInput (400) when `value` holds a control character other than tab and line
    breaks, or an unpaired surrogate: no parameter of the hub's is meant to carry one."""
    found = _CONTROL.search(value)
    if found is None:
        return
    code = f"U+{ord(found.group()):04X}{', NUL' if found.group() == chr(0) else ''}"
    advice = "search for words, numbers or addresses" if name == "q" else "no parameter takes one"
    raise UnreadableInput(f"{name} contains a control character ({code}); {advice}")


def search_text(raw: str | None, *, name: str = "q", limit: int = MAX_QUERY) -> str | None:
    """The search text, trimmed and cut to `limit` characters; None when empty. UnreadableInput
    (400) for control characters or unpaired surrogates."""
    if not raw:
        return None
    value = raw[: limit * 4].translate(_SPACES)
    refuse_control_characters(value, name)
    return value.strip()[:limit] or None
