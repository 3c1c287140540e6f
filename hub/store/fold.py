"""The one folding of searched text on SQLite: what the inbox's substring search (subjects,
customers' names, addresses) compares, in its full-text index and in its plain LIKE queries alike.

search_fold(text): each character's compatibility decomposition (NFKD: "é" is "e" and a combining
acute, a full-width "Ａ" is "A", "ﬁ" is "fi") without its combining marks (canonical combining
class above 0: accents, cedillas, Hebrew and Arabic vowel points), then the case folding of
SQLite's FTS5 trigram tokenizer (case_sensitive 0, which is not str.lower()'s beyond ASCII), and a
few letters that carry their stroke or ligature in the letter itself, spelt as PostgreSQL's
unaccent spells them (ß ss, æ ae, ø o, ł l, đ d, ...). Deterministic, idempotent
(search_fold(search_fold(t)) == search_fold(t)), and linear in the text's length: characters are
folded one by one from a table (the canonical reordering of whole-text NFKD would sort a long run
of marks, quadratic in the worst case; it only moves the marks dropped here).

hub/store/db.py registers it as the SQL function search_fold(text) on every SQLite connection the
hub opens; PostgreSQL has its own search_fold(text) (lower(unaccent()), migration 0025).
"""

from __future__ import annotations

import sqlite3
import threading
import unicodedata

# Letters unaccent folds that have no decomposition, by their FTS5-folded (lower-case) form.
_LETTERS = {"ß": "ss", "æ": "ae", "ð": "d", "ø": "o", "þ": "th", "đ": "d", "ħ": "h", "ı": "i", "ł": "l", "œ": "oe", "ŧ": "t"}
# Code points FTS5 folds: below 65536 by its table, and Deseret (U+10400-U+10427) by an offset.
_FTS5_FOLDED = (range(1, 0xD800), range(0xE000, 0x10000), range(0x10400, 0x10450))

_table: dict[int, str] | None = None
_table_lock = threading.Lock()


def _tokenizer_folds(chars: list[str]) -> list[str]:
    """How FTS5's trigram tokenizer folds each character, read back from a scratch index in memory:
    one document of all of them (and two marks, so that each starts a trigram), its terms in order."""
    scratch = sqlite3.connect(":memory:")
    try:
        scratch.execute("CREATE VIRTUAL TABLE fold USING fts5(text, content='', tokenize='trigram')")
        scratch.execute("CREATE VIRTUAL TABLE fold_terms USING fts5vocab(fold, instance)")
        scratch.execute("INSERT INTO fold(rowid, text) VALUES (1, ?)", ("".join(chars) + "\x01\x01",))
        terms = [term for (term,) in scratch.execute("SELECT term FROM fold_terms ORDER BY offset")]
    finally:
        scratch.close()
    if len(terms) != len(chars):  # not one term per character: a tokenizer unlike 3.40's
        raise RuntimeError(f"the trigram tokenizer made {len(terms)} terms of {len(chars)} characters")
    return [term[0] for term in terms]


def _build_table() -> dict[int, str]:
    """What each character FTS5 folds (all of the Basic Multilingual Plane) folds to, itself
    included: str.translate then never asks _Table.__missing__ for them. Built once per process
    (~0.3 s)."""
    chars = [chr(c) for r in _FTS5_FOLDED for c in r]
    folded = dict(zip(chars, _tokenizer_folds(chars)))
    return {
        ord(c): "".join(_fold_char(d, folded) for d in unicodedata.normalize("NFKD", c) if not unicodedata.combining(d))
        for c in chars
    }


def _fold_char(c: str, folded: dict[str, str]) -> str:
    lower = folded.get(c, c)
    return _LETTERS.get(lower, lower)


class _Table(dict):
    """The table, with the characters above it (outside FTS5's folding: only their decomposition
    and marks) folded as they come, and not kept (any text may hold thousands of them)."""

    def __missing__(self, code: int) -> str:
        c = chr(code)
        if not (unicodedata.decomposition(c) or unicodedata.combining(c)):
            return c
        parts = (d for d in unicodedata.normalize("NFKD", c) if not unicodedata.combining(d))
        return "".join(self.get(ord(d), d) for d in parts)


def _the_table() -> _Table:
    global _table
    if _table is None:
        with _table_lock:
            if _table is None:
                _table = _Table(_build_table())
    return _table  # type: ignore[return-value]


def search_fold(text: str | None) -> str | None:
    """text folded for searching (the module's docstring says how); None stays None (SQL's NULL)."""
    if text is None:
        return None
    if text.isascii():
        return text.lower()
    return text.translate(_the_table())


def sqlite_like(column: str, pattern: str) -> str:
    """SQLite's SQL for search_fold(column) LIKE pattern ESCAPE '\\', the pattern folded already,
    that calls Python only for a text beyond ASCII (its length in characters is not its length in
    bytes). An ASCII text's folding is its lower case, which SQLite's own LIKE compares alike; the
    function's call, ~0.7 µs a row, made a scan of 20,000 names 5 times slower. Equal to the plain
    condition for every text: a match of the folded pattern in the text as written is one in its
    folding, as folding is character by character and leaves the pattern's characters as they are."""
    return (
        f"({column} LIKE {pattern} ESCAPE '\\' OR "
        f"(length({column}) <> length(CAST({column} AS BLOB)) AND search_fold({column}) LIKE {pattern} ESCAPE '\\'))"
    )


def register(dbapi_conn: sqlite3.Connection) -> None:
    """search_fold(text) as an SQL function of this SQLite connection. Deterministic: SQLite may
    evaluate it once for a constant argument."""
    dbapi_conn.create_function("search_fold", 1, search_fold, deterministic=True)
