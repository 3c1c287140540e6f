"""What people type into a search box (`q=` of the inbox, the API, the knowledge base), checked
once before it reaches a store.

A NUL cannot be in a PostgreSQL text parameter at all (the driver refuses it, which looked like the
store being down), and no control character belongs in a search: such a query is a malformed
request, refused with a message that says so. Tabs and line breaks (a pasted snippet) are spaces.
"""

from __future__ import annotations

import unicodedata

from hub.errors import UnreadableInput

MAX_QUERY = 200
_SPACES = str.maketrans({"\t": " ", "\n": " ", "\r": " "})


def search_text(raw: str | None, *, name: str = "q", limit: int = MAX_QUERY) -> str | None:
    """The search text, trimmed and cut to `limit` characters; None when empty. UnreadableInput
    (400) for control characters or unpaired surrogates."""
    if not raw:
        return None
    value = raw[: limit * 4].translate(_SPACES)
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cs"):
            code = f"U+{ord(ch):04X}"
            raise UnreadableInput(f"{name} contains a control character ({code}{', NUL' if ch == chr(0) else ''}); "
                                  "search for words, numbers or addresses")
    return value.strip()[:limit] or None
