"""Search by substring over who and what a conversation is about: its subject, its customer's
name and its customer's addresses, for the q= of a listing: search_fold(column) LIKE
'%' || search_fold(text) || '%', both sides folded the same way (case, accents, compatibility
forms: SQLite's search_fold is hub/store/fold.py's, PostgreSQL's lower(unaccent()), migration 0025),
so "chloe" finds "Chloé Martin" and "CHLOÉ" finds "chloe@example.com".

With the trigram indexes of migration 0003 (FTS5 on SQLite, pg_trgm on PostgreSQL) the matching
conversations are found through them first (candidates()); a text of two characters through the
trigrams that start with it (SQLite, migration 0013) or an index of each column's two-character
pieces (PostgreSQL, migration 0014). Without them (one character, a store without the indexes)
the plain condition (matches_like) looks for the customers first. A text so common that it matches
SEARCH_MAX_CANDIDATES rows or more (5% of a 100,000-conversation store) is not collected from the
indexes at all: the listing walks in activity order instead, checking each conversation
(matches_common). hub/conversations/search/page.py decides which way a listing takes.
"""

from __future__ import annotations

import logging
import weakref

from sqlalchemy import Engine, LargeBinary, String, and_, bindparam, cast, func, literal, or_, select
from sqlalchemy import text as sql_text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import NullType

from hub.store.db import SEARCH_END, SEARCH_QUEUE, SEARCH_TERMS, SEARCH_TEXT, search_fold
from hub.store.fold import sqlite_like
from hub.store.models import Conversation, Customer, Identity
from hub.store.sql import like_pattern

conversation_t = Conversation.__table__
customer_t = Customer.__table__
identity_t = Identity.__table__

log = logging.getLogger(__name__)
SEARCH_MIN_CHARS = 3  # a trigram holds three characters (two: _two_characters, _bigrams_hold)
SEARCH_MAX_CANDIDATES = 5000

_search_objects: weakref.WeakKeyDictionary[Engine, dict[tuple[str, ...], bool]] = weakref.WeakKeyDictionary()
_SQLITE_SEARCH_TABLES = (SEARCH_TEXT, SEARCH_QUEUE)
# On search_fold(column) (migration 0025; those of 0003 and 0014 were on the column as written).
_PG_SEARCH_INDEXES = ("search_conversation_subject_fold_trgm", "search_customer_name_fold_trgm", "search_identity_address_fold_trgm")
_PG_BIGRAM_INDEXES = ("search_conversation_subject_fold_bigrams", "search_customer_name_fold_bigrams", "search_identity_address_fold_bigrams")

# SQLite: one FTS5 table holds the three columns as documents numbered row id * 4 + 0 (a subject),
# 1 (a customer's name) or 2 (an address); an address leads to its customer through `identity`
# now, so a merge needs nothing from the index. Changes not yet moved into the index wait in the
# queue (hub/store/db.py): a document found there is read from the queue (its latest state), not from
# the index. The index holds each text folded (hub/store/db.py), the queue as written: its LIKE
# folds it. :phrase is the quoted text folded, or for two characters the index's terms that start
# with it, OR-ed (_two_characters); :pattern the folded text's LIKE pattern. At most :limit
# documents are read; a row -1 says there were that many (a common text: the caller gives up on the index). UNION ALL, not UNION, so that LIMIT stops
# the work early; the caller drops duplicates.
_FTS_CANDIDATES = sql_text(
    f"""
    WITH hit(n) AS (
        SELECT rowid FROM {SEARCH_TEXT}
        WHERE {SEARCH_TEXT} MATCH :phrase AND rowid NOT IN (SELECT n FROM {SEARCH_QUEUE})
        UNION ALL
        SELECT n FROM (SELECT n, text, remove, max(seq) FROM {SEARCH_QUEUE} GROUP BY n)
        WHERE remove = 0 AND {sqlite_like("text", ":pattern")}
        LIMIT :limit
    )
    SELECT -1 FROM (SELECT count(*) AS found FROM hit) WHERE found >= :limit
    UNION ALL
    SELECT n >> 2 FROM hit WHERE n & 3 = 0
    UNION ALL
    SELECT id FROM conversation WHERE customer_id IN (
        SELECT n >> 2 FROM hit WHERE n & 3 = 1
        UNION
        SELECT customer_id FROM identity WHERE id IN (SELECT n >> 2 FROM hit WHERE n & 3 = 2))
    LIMIT :limit
    """
)


def customers_holding(conn, q: str) -> list:
    """Conditions on the customer table for the customers whose name or one of whose addresses
    holds q, folded as the inbox search folds: the customer directory's search. Where the indexes
    answer, the customers they found (SQLite: the documents of names and addresses; PostgreSQL:
    the trigram or bigram indexes on the folded columns), so that only those are read; a text too
    common for them (or one they cannot answer) is checked customer by customer, as the directory
    walks them newest first."""
    dialect = conn.dialect.name
    pattern = folded_pattern(q)
    own_address = (
        select(identity_t.c.id)
        .where(identity_t.c.customer_id == customer_t.c.id, _holds(dialect, identity_t.c.address, pattern))
        .exists()
    )
    conditions = [or_(_holds(dialect, customer_t.c.name, pattern), own_address)]
    limit = SEARCH_MAX_CANDIDATES
    if dialect == "sqlite" and _fts_answers(conn, q):
        folded_q = search_fold(q)
        params = {"phrase": _fts_phrase(conn, folded_q), "pattern": like_pattern(folded_q), "limit": limit}
        try:
            ids = conn.execute(_FTS_CUSTOMERS, params).scalars().all()
        except DBAPIError as exc:  # a damaged index (hub/store/db.py rebuilds it on the next write)
            log.warning("inbox search index unusable, searching customers without it: %s", exc.orig)
            return conditions
    elif dialect == "postgresql" and _pg_answers(conn, q):
        if len(search_fold(q)) < SEARCH_MIN_CHARS:
            found = select(customer_t.c.id).where(_bigrams_hold(customer_t.c.name, q, pattern)).union(
                select(identity_t.c.customer_id).where(_bigrams_hold(identity_t.c.address, q, pattern)))
        else:
            found = _matching_customers(dialect, pattern)
        conn.execute(_PLANNER_FOR_SEARCH)  # as in candidates(): the indexes, not a scan
        ids = conn.execute(found.limit(limit)).scalars().all()
        conn.execute(_SEQSCAN_ON)
    else:
        return conditions
    if len(ids) < limit and -1 not in ids:
        conditions.append(customer_t.c.id.in_(sorted(set(ids))))
    return conditions


# SQLite: the customers whose name (documents numbered id * 4 + 1) or address (id * 4 + 2) holds
# the folded text, as _FTS_CANDIDATES finds them (the queue read first); a row -1 says :limit or more.
_FTS_CUSTOMERS = sql_text(
    f"""
    WITH hit(n) AS (
        SELECT rowid FROM {SEARCH_TEXT}
        WHERE {SEARCH_TEXT} MATCH :phrase AND rowid & 3 IN (1, 2) AND rowid NOT IN (SELECT n FROM {SEARCH_QUEUE})
        UNION ALL
        SELECT n FROM (SELECT n, text, remove, max(seq) FROM {SEARCH_QUEUE} GROUP BY n)
        WHERE n & 3 IN (1, 2) AND remove = 0 AND {sqlite_like("text", ":pattern")}
        LIMIT :limit
    )
    SELECT -1 FROM (SELECT count(*) AS found FROM hit) WHERE found >= :limit
    UNION ALL
    SELECT n >> 2 FROM hit WHERE n & 3 = 1
    UNION ALL
    SELECT customer_id FROM identity WHERE id IN (SELECT n >> 2 FROM hit WHERE n & 3 = 2)
    """
)


def folded(column):
    """search_fold(column): the searched form of a text, on either database (the expression
    PostgreSQL's indexes are on)."""
    return func.search_fold(column, type_=String)


def folded_pattern(q: str | BindParameter):
    """'%' || search_fold(q) || '%' with the folded text's % _ \\ escaped, in SQL: each database
    folds q as it folds its columns (PostgreSQL's unaccent makes a full-width '％' a '%', which
    must then be taken literally, so the escaping comes after the folding). NULL, which matches
    nothing, where q folds to nothing (combining marks alone). IMMUTABLE on PostgreSQL: planned
    with q's value, the whole pattern is a constant, as the trigram indexes want."""
    value = q if isinstance(q, BindParameter) else literal(q, String)
    escaped = folded(value)
    for char in ("\\", "%", "_"):
        escaped = func.replace(escaped, char, "\\" + char, type_=String)
    return literal("%", String) + func.nullif(escaped, "", type_=String) + literal("%", String)


def _holds(dialect: str, column, pattern):
    """search_fold(column) LIKE pattern: on PostgreSQL as written (the indexes' expression); on
    SQLite through the function only for a text beyond ASCII (hub.store.fold.sqlite_like says why)."""
    if dialect == "sqlite":
        beyond_ascii = func.length(column) != func.length(cast(column, LargeBinary))
        return or_(column.like(pattern, escape="\\"), and_(beyond_ascii, folded(column).like(pattern, escape="\\")))
    return folded(column).like(pattern, escape="\\")


def _matching_customers(dialect: str, pattern):
    return select(customer_t.c.id).where(_holds(dialect, customer_t.c.name, pattern)).union(
        select(identity_t.c.customer_id).where(_holds(dialect, identity_t.c.address, pattern))
    )


def matches_like(dialect: str, q: str):
    """The plain condition, for a database of this dialect. Matching customers first (few rows),
    then their conversations by index; an OR across the join would make the database walk every
    conversation."""
    pattern = folded_pattern(q)
    return or_(
        conversation_t.c.customer_id.in_(_matching_customers(dialect, pattern)),
        _holds(dialect, conversation_t.c.subject, pattern),
    )


def matches_common(dialect: str, q: str | BindParameter):
    """The condition for a common text, checked on each conversation of the activity-order walk:
    its subject, its customer's name (joined already) and its customer's addresses (by index).
    Collecting the matching customers first, as matches_like does, would read them all."""
    pattern = folded_pattern(q)
    own_address = (
        select(identity_t.c.id)
        .where(identity_t.c.customer_id == conversation_t.c.customer_id, _holds(dialect, identity_t.c.address, pattern))
        .exists()
    )
    return or_(_holds(dialect, conversation_t.c.subject, pattern), _holds(dialect, customer_t.c.name, pattern), own_address)


def has_indexes(conn) -> bool:
    """Whether migration 0003 could create the indexes here."""
    return _search_objects_exist(conn, _SQLITE_SEARCH_TABLES if conn.dialect.name == "sqlite" else _PG_SEARCH_INDEXES)


def _search_objects_exist(conn, names: tuple[str, ...]) -> bool:
    """Whether these tables (SQLite) or indexes (PostgreSQL) all exist here: a migration may have
    had to do without them. Asked once per engine."""
    known = _search_objects.setdefault(conn.engine, {})
    if names not in known:
        if conn.dialect.name == "sqlite":
            probe = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN :names"
        else:
            probe = "SELECT count(*) FROM pg_indexes WHERE indexname IN :names"
        probe = sql_text(probe).bindparams(bindparam("names", expanding=True))
        known[names] = conn.execute(probe, {"names": list(names)}).scalar() == len(names)
    return known[names]


def _fts_answers(conn, q: str) -> bool:
    """SQLite: whether the FTS5 index finds the documents holding q, and so tells how many there
    are: a text of three characters or more by its trigrams, one of two by the trigrams that
    start with it (_two_characters), counted once folded ("ﬁ" is two, "é" one). Not a text
    holding the mark indexed after each document (hub.store.db.SEARCH_END): the index would find
    it at every document's end; the plain query does not."""
    q = search_fold(q)
    return (
        conn.dialect.name == "sqlite"
        and len(q) >= SEARCH_MIN_CHARS - 1
        and SEARCH_END not in q
        and has_indexes(conn)
    )


_TERMS_BETWEEN = sql_text(f"SELECT term FROM {SEARCH_TERMS} WHERE term >= :low AND term <= :high")


def _two_characters(conn, q: str) -> str:
    """The FTS5 query for a text of two characters, folded (search_fold, as the index's texts
    are: its terms are then exactly the texts' trigrams, the tokenizer's own case folding
    changing nothing more): the index's trigrams that start with it, each quoted, OR-ed. Every
    document is indexed with a mark after it (hub/store/db.py), so every occurrence of the two
    characters, the document's last two included, starts one. The terms are read by range from
    the index's vocabulary (0.1-1 ms at 100,000 conversations, as it counts each term's
    documents; reading all of it took ~75 ms). A trigram is three characters, the third at most
    U+10FFFF: the range holds all that start with q. No such term: q quoted, which has no trigram
    and so matches nothing (FTS5's documentation)."""
    terms = conn.execute(_TERMS_BETWEEN, {"low": q, "high": q + "\U0010ffff"}).scalars().all()
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms or [q])


def _fts_phrase(conn, q: str) -> str:
    """The FTS5 query for q, folded already: for two characters the trigrams that start with them
    (_two_characters); otherwise a quoted phrase, the text as it is (only '"' needs doubling):
    trigram phrases match where the trigrams follow each other, so exactly where the text occurs."""
    if len(q) < SEARCH_MIN_CHARS:
        return _two_characters(conn, q)
    return '"' + q.replace('"', '""') + '"'


def _pg_answers(conn, q: str) -> bool:
    """PostgreSQL: whether indexes find the rows holding q: pg_trgm's for three characters or
    more, those of search_bigrams() for two (both on search_fold(column), migration 0025); each
    checked once per engine. One character: neither (a scan). Counted as hub/store/fold.py folds,
    which may differ in length from PostgreSQL's folding ("ß" is one, unaccent's "ss" two): only
    which index is asked depends on it, and either finds what the LIKE after it decides."""
    q = search_fold(q)
    if len(q) == SEARCH_MIN_CHARS - 1:
        return _search_objects_exist(conn, _PG_BIGRAM_INDEXES)
    return len(q) >= SEARCH_MIN_CHARS and has_indexes(conn)


def _bigrams_hold(column, q: str, pattern):
    """PostgreSQL, two characters: the folded column's bigrams (an index of migration 0025) hold
    the folded q's, then the LIKE decides, so that what is found is what the plain query finds
    (q's bigrams rather than q as one element: folding may change its length, "æ" to "ae")."""
    return and_(
        func.search_bigrams(folded(column)).op("@>")(func.search_bigrams(folded(literal(q, String)))),
        _holds("postgresql", column, pattern),
    )


def candidates(conn, q: str) -> tuple[list[int] | None, bool]:
    """Ids of the conversations q matches by subject, customer name or address, through the
    trigram indexes (PostgreSQL, two characters: the bigram indexes); (None, common): the indexes
    cannot answer, or (common) the text matches SEARCH_MAX_CANDIDATES rows or more."""
    if not (_fts_answers(conn, q) if conn.dialect.name == "sqlite" else _pg_answers(conn, q)):
        return None, False
    limit = SEARCH_MAX_CANDIDATES
    if conn.dialect.name == "sqlite":
        q = search_fold(q)  # as the index's texts are (hub/store/db.py)
        try:
            params = {"phrase": _fts_phrase(conn, q), "pattern": like_pattern(q), "limit": limit}
            rows = conn.execute(_FTS_CANDIDATES, params).scalars().all()
        except DBAPIError as exc:  # a damaged index (hub/store/db.py rebuilds it on the next write)
            log.warning("inbox search index unusable, searching without it: %s", exc.orig)
            return None, False
    else:
        pattern = folded_pattern(q)
        if len(search_fold(q)) < SEARCH_MIN_CHARS:  # two characters (_pg_answers): no trigram; bigrams, then LIKE
            by_subject = select(conversation_t.c.id).where(_bigrams_hold(conversation_t.c.subject, q, pattern))
            customers = select(customer_t.c.id).where(_bigrams_hold(customer_t.c.name, q, pattern)).union(
                select(identity_t.c.customer_id).where(_bigrams_hold(identity_t.c.address, q, pattern))
            )
            by_customer = select(conversation_t.c.id).where(conversation_t.c.customer_id.in_(customers))
        else:
            by_subject = select(conversation_t.c.id).where(_holds("postgresql", conversation_t.c.subject, pattern))
            by_customer = select(conversation_t.c.id).where(conversation_t.c.customer_id.in_(_matching_customers("postgresql", pattern)))
        # PostgreSQL misjudges how selective LIKE '%text%' is and would rather scan the tables
        # than use the trigram indexes (17-35 ms a table at 40,000 rows, against 1-3 ms). And the
        # page query that follows takes a list of ids whose length changes from one search to
        # the next: a plan cached for the prepared statement cannot know it (11 ms against 17).
        conn.execute(_PLANNER_FOR_SEARCH)
        rows = conn.execute(by_subject.union_all(by_customer).limit(limit)).scalars().all()
        conn.execute(_SEQSCAN_ON)
    if len(rows) >= limit or -1 in rows:
        return None, True
    return list(dict.fromkeys(rows)), False


# PostgreSQL gets the ids as one array parameter: as thousands of parameters (IN (...)) the
# statement took ~30 ms to bind and plan. The array goes in its text form, '{1,2,3}', typed by the
# CAST alone (an untyped parameter): psycopg adapts a list element by element, ~1 µs an id (5 ms
# for 5,000), where PostgreSQL reads the text in a tenth of that. A parameter typed as text would
# be cast row by row instead: hundreds of milliseconds.
_ID_ARRAY = sql_text("conversation.id = ANY(CAST(:search_ids AS integer[]))")


def one_of(conn, ids: list[int]):
    """conversation.id among up to SEARCH_MAX_CANDIDATES + MAX_MESSAGE_HITS ids."""
    if conn.dialect.name == "postgresql":
        literal = "{" + ",".join(str(int(i)) for i in ids) + "}"
        return _ID_ARRAY.bindparams(bindparam("search_ids", literal, type_=NullType()))
    return conversation_t.c.id.in_(ids)


_PLANNER_FOR_SEARCH = sql_text(
    "SELECT set_config('enable_seqscan', 'off', true), set_config('plan_cache_mode', 'force_custom_plan', true)"
)
_SEQSCAN_ON = sql_text("RESET enable_seqscan")  # back to the session's setting


def index_counts(conn, q: str) -> bool:
    """Whether the indexes tell cheaply how common q is (SQLite's FTS5 for three characters or
    more: it stops counting at SEARCH_MAX_CANDIDATES). Elsewhere a listing looks at the newest
    conversations to find out (hub/conversations/search/page.py)."""
    return len(search_fold(q)) >= SEARCH_MIN_CHARS and _fts_answers(conn, q)
