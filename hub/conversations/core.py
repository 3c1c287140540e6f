"""Conversations as agents see them: the inbox listing, one conversation with its messages, and
what agents do to it (status, assignee, priority, replies, internal notes)."""

from __future__ import annotations

import base64
import binascii
import logging
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, and_, bindparam, func, or_, select, tuple_, update
from sqlalchemy import text as sql_text  # `text` is a message's text in this module
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.util import ClauseAdapter, find_tables
from sqlalchemy.types import NullType

from hub.auth.accounts import Principal, audit
from hub.store.blobs import BlobStore
from hub.store.db import SEARCH_END, SEARCH_QUEUE, SEARCH_TERMS, SEARCH_TEXT, read_tx, search_fold, write_tx
from hub.conversations.versions import bumped
from hub.contract.errors import NotFound, RejectedInput, StaleVersion
from hub.conversations import mentions
from hub.conversations.message_search import common_in_messages, conversations_with_text, message_holds
from hub.store.sql import like_pattern, planner_off
from hub.store.models import Agent, Attachment, Conversation, ConversationStatus, Customer, Direction, Identity, Message, Outbox, OutboxStatus, Priority, utcnow
from hub.outbox.queue import enqueue
from hub.ingest.sanitize import sanitize_html

conversation_t = Conversation.__table__
customer_t = Customer.__table__
message_t = Message.__table__
identity_t = Identity.__table__
outbox_t = Outbox.__table__
agent_t = Agent.__table__
attachment_t = Attachment.__table__

MAX_PAGE = 200
# How the outbox's states read to an agent.
DELIVERY_STATE = {
    OutboxStatus.pending: "queued",
    OutboxStatus.sending: "sending",
    OutboxStatus.sent: "sent",
    OutboxStatus.dead: "failed",
}


def iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def encode_cursor(when: datetime, conversation_id: int) -> str:
    return base64.urlsafe_b64encode(f"{iso(when)}|{conversation_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, ident = raw.partition("|")
        return datetime.fromisoformat(when.replace("Z", "+00:00")), int(ident)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise RejectedInput("the cursor is not valid; use the next_cursor of a previous page") from None


@dataclass(frozen=True)
class ConversationFilter:
    status: str | None = None
    channel: str | None = None
    assignee: int | None = None  # 0: unassigned
    customer: int | None = None
    segment: str | None = None  # the customer's segment (hub.store.models.Segment)
    q: str | None = None
    limit: int = 50
    cursor: str | None = None


_LIST_COLS = (
    conversation_t.c.id,
    conversation_t.c.customer_id,
    conversation_t.c.channel,
    conversation_t.c.subject,
    conversation_t.c.status,
    conversation_t.c.priority,
    conversation_t.c.assignee_id,
    conversation_t.c.intent,
    conversation_t.c.sla_due_at,
    conversation_t.c.first_response_at,
    conversation_t.c.resolved_at,
    conversation_t.c.last_message_at,
    conversation_t.c.created_at,
    conversation_t.c.version,
    customer_t.c.name.label("customer_name"),
    customer_t.c.segment.label("customer_segment"),
)


def _conversation_dict(row) -> dict[str, Any]:
    return {
        "id": row.id,
        "customer": {"id": row.customer_id, "name": row.customer_name, "segment": row.customer_segment},
        "channel": row.channel,
        "subject": row.subject,
        "status": row.status,
        "priority": row.priority,
        "assignee_id": row.assignee_id,
        "intent": row.intent,
        "sla_due_at": iso(row.sla_due_at),
        "first_response_at": iso(row.first_response_at),
        "resolved_at": iso(row.resolved_at),
        "last_message_at": iso(row.last_message_at),
        "created_at": iso(row.created_at),
        "version": row.version,
    }


# --- text search (q=) ------------------------------------------------------------------------
#
# q= finds the text anywhere in a conversation's subject, its customer's name or one of the
# customer's addresses (LIKE '%text%'), and its words in the conversation's messages
# (hub/conversations/message_search.py). With the trigram indexes of migration 0003 (FTS5 on SQLite, pg_trgm on
# PostgreSQL) the matching conversations are found through them first and then paged like any
# other filter; a text of two characters through the trigrams that start with it (SQLite,
# migration 0013) or an index of each column's two-character pieces (PostgreSQL, migration 0014).
# Without them (one character, a store without the indexes) the plain query looks for the
# customers first, then walks the conversations in activity order. A text so common that it
# matches SEARCH_MAX_CANDIDATES rows or more (5% of a 100,000-conversation store) walks in
# activity order too, checking each conversation's own customer: a page of matches is met after
# a short walk, where collecting every match first would cost more. Where the indexes cannot tell
# cheaply that a text is common (under three characters, no indexes, PostgreSQL), a look at the
# newest conversations decides (_common_recently), and the walk goes back a bounded way before
# the indexes are asked after all (_search_page).

log = logging.getLogger(__name__)
SEARCH_MIN_CHARS = 3  # a trigram holds three characters (two: _two_characters, _bigrams_hold)
SEARCH_MAX_CANDIDATES = 5000
COMMON_PROBE = 200  # newest conversations a text is tried on (_common_recently)
COMMON_PROBE_HITS = 5  # 2.5% of them: a page of 50 after a walk of ~2,000
WALK_CONVERSATIONS = 5000  # how far back the walk for a common text goes before the indexes are asked
WALK_MESSAGES_CONVERSATIONS = 300  # the same for common message words (each step reads ~10 messages: ~20 µs)
# The walk for message words looks at this many first: where none of them holds the words, they
# are rarely together (under one conversation in 100), a walk of 300 would meet a few matches at
# most and not fill a page, and the index is asked at once (two common words never together:
# ~2 ms of walk instead of ~6.5, then the index's ~10).
WALK_MESSAGES_FIRST = 100
NOT_YET = object()  # the message matches, not looked up (yet)
_search_objects: weakref.WeakKeyDictionary[Engine, dict[tuple[str, ...], bool]] = weakref.WeakKeyDictionary()
_SQLITE_SEARCH_TABLES = (SEARCH_TEXT, SEARCH_QUEUE)
_PG_SEARCH_INDEXES = ("search_conversation_subject_trgm", "search_customer_name_trgm", "search_identity_address_trgm")
_PG_BIGRAM_INDEXES = ("search_conversation_subject_bigrams", "search_customer_name_bigrams", "search_identity_address_bigrams")

# SQLite: one FTS5 table holds the three columns as documents numbered row id * 4 + 0 (a subject),
# 1 (a customer's name) or 2 (an address); an address leads to its customer through `identity`
# now, so a merge needs nothing from the index. Changes not yet moved into the index wait in the
# queue (hub/store/db.py): a document found there is read from the queue (its latest state), not from
# the index. :phrase is the quoted text, or for two characters the index's terms that start with
# them, OR-ed (_two_characters). At most :limit documents are read; a row -1 says there were that
# many (a common text: the caller gives up on the index). UNION ALL, not UNION, so that LIMIT stops
# the work early; the caller drops duplicates.
_FTS_CANDIDATES = sql_text(
    f"""
    WITH hit(n) AS (
        SELECT rowid FROM {SEARCH_TEXT}
        WHERE {SEARCH_TEXT} MATCH :phrase AND rowid NOT IN (SELECT n FROM {SEARCH_QUEUE})
        UNION ALL
        SELECT n FROM (SELECT n, text, remove, max(seq) FROM {SEARCH_QUEUE} GROUP BY n)
        WHERE remove = 0 AND text LIKE :pattern ESCAPE '\\'
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


def _matching_customers(pattern: str):
    return select(customer_t.c.id).where(customer_t.c.name.ilike(pattern, escape="\\")).union(
        select(identity_t.c.customer_id).where(identity_t.c.address.ilike(pattern, escape="\\"))
    )


def _matches_like(pattern: str):
    """The plain condition. Matching customers first (few rows), then their conversations by
    index; an OR across the join would make the database walk every conversation."""
    return or_(
        conversation_t.c.customer_id.in_(_matching_customers(pattern)),
        conversation_t.c.subject.ilike(pattern, escape="\\"),
    )


def _matches_common(pattern: str):
    """The condition for a common text, checked on each conversation of the activity-order walk:
    its subject, its customer's name (joined already) and its customer's addresses (by index).
    Collecting the matching customers first, as _matches_like does, would read them all."""
    own_address = (
        select(identity_t.c.id)
        .where(identity_t.c.customer_id == conversation_t.c.customer_id, identity_t.c.address.ilike(pattern, escape="\\"))
        .exists()
    )
    return or_(
        conversation_t.c.subject.ilike(pattern, escape="\\"),
        customer_t.c.name.ilike(pattern, escape="\\"),
        own_address,
    )


def _message_like(pattern: str):
    """Message text compared with LIKE: for a store without the message index (a scan)."""
    return conversation_t.c.id.in_(select(message_t.c.conversation_id).where(message_t.c.text.ilike(pattern, escape="\\")))


def _search_condition(conn, q: str, in_messages: set[int] | None):
    """The WHERE of a q= listing; None when nothing can match. in_messages: the conversations
    with a message holding q's words (None: no message index here)."""
    pattern = like_pattern(q)
    ids, common = _search_candidates(conn, q)
    if ids is not None:
        if in_messages is None:
            return or_(_one_of(conn, ids), _message_like(pattern)) if ids else _message_like(pattern)
        found = list(dict.fromkeys([*ids, *sorted(in_messages)]))
        return _one_of(conn, found) if found else None
    by_text = _matches_common(pattern) if common else _matches_like(pattern)
    if in_messages is None:
        return or_(by_text, _message_like(pattern))
    return or_(by_text, _one_of(conn, sorted(in_messages))) if in_messages else by_text


def _walk_condition(conn, q: str, in_messages: set[int] | None):
    """The WHERE of the activity-order walk for a common text: each conversation checked."""
    pattern = like_pattern(q)
    if in_messages is None:
        return or_(_matches_common(pattern), _message_like(pattern))
    return or_(_matches_common(pattern), _one_of(conn, sorted(in_messages))) if in_messages else _matches_common(pattern)


def _common_recently(conn, q: str) -> bool:
    """Whether q's text is in the subject, customer or address of COMMON_PROBE_HITS of the newest
    COMMON_PROBE conversations: then a walk in activity order meets a page of matches soon. Asked
    where the indexes cannot say how common the text is cheaply: a text under three characters
    (two characters are common more often than not, and the indexes would read 5,000
    conversations before saying so: 10-25 ms), a store without the indexes, and PostgreSQL,
    whose trigram index collects every match of a common text before any LIMIT applies (20-70 ms
    for a text in 5% of 100,000 conversations). Costs a look at COMMON_PROBE conversations
    (1-4 ms)."""
    if len(q) >= SEARCH_MIN_CHARS and _fts_answers(conn, q):
        return False  # FTS5 finds out cheaply (_search_candidates)
    params = {"probe_pattern": like_pattern(q), "probe_newest": COMMON_PROBE, "probe_hits": COMMON_PROBE_HITS}
    return conn.execute(_common_probe(), params).scalar() >= COMMON_PROBE_HITS


@lru_cache(maxsize=1)
def _common_probe():
    """How many of the newest :probe_newest conversations (up to :probe_hits) the walk's
    condition holds for; built once (adapting the condition to the subquery costs ~1.5 ms)."""
    newest = (
        select(conversation_t.c.id, conversation_t.c.subject, conversation_t.c.customer_id)
        .order_by(conversation_t.c.last_message_at.desc(), conversation_t.c.id.desc())
        .limit(bindparam("probe_newest"))
        .subquery()
    )
    # The condition the walk checks, on these rows (the subquery's columns for the conversation's).
    matches = ClauseAdapter(newest).traverse(_matches_common(bindparam("probe_pattern")))
    hits = (
        select(newest.c.id)
        .join(customer_t, customer_t.c.id == newest.c.customer_id)
        .where(matches)
        .limit(bindparam("probe_hits"))
        .subquery()
    )
    return select(func.count()).select_from(hits)


def _walk_floor(conn, own: list, steps: int):
    """Where the walk ends: `steps` conversations from the page's start, counted among
    those the listing's own filters keep (by their indexes: the segment aside); None when fewer
    are left (the walk then sees them all)."""
    floor = conn.execute(
        select(conversation_t.c.last_message_at, conversation_t.c.id)
        .where(*own)
        .order_by(conversation_t.c.last_message_at.desc(), conversation_t.c.id.desc())
        .offset(steps - 1)
        .limit(1)
    ).first()
    if floor is None:
        return None
    return tuple_(conversation_t.c.last_message_at, conversation_t.c.id) >= tuple_(floor.last_message_at, floor.id)


def _search_page(conn, stmt, q: str, own: list, on_customer: list, limit: int) -> list:
    """The rows (up to limit + 1) of a q= listing; `own`: the listing's conditions on the
    conversation's own columns (filters, cursor), `on_customer` those on its customer's.

    A text common among recent conversations, or words common in messages (PostgreSQL), are
    looked for by walking the listing in activity order, as far back as WALK_CONVERSATIONS
    (WALK_MESSAGES_CONVERSATIONS for message words, each step reading messages, after a first
    look at WALK_MESSAGES_FIRST): when that fills the page, it is the page (every conversation on
    the way was checked). A text common a while ago and rare since, or rare, goes through the
    indexes (_search_condition)."""
    common_words = common_in_messages(conn, q)  # PostgreSQL: each message walked is checked instead
    in_messages = NOT_YET if common_words else conversations_with_text(conn, q)  # None: no message index
    if common_words or _common_recently(conn, q):
        if common_words:
            condition = or_(_matches_common(like_pattern(q)), message_holds(q))
            depths = (WALK_MESSAGES_FIRST, WALK_MESSAGES_CONVERSATIONS)
        else:
            condition = _walk_condition(conn, q, in_messages)
            depths = (WALK_CONVERSATIONS,)
        walk = stmt.where(condition)
        for depth in depths:
            floor = _walk_floor(conn, own, depth)
            rows = _walk(conn, walk if floor is None else walk.where(floor))
            if floor is None or len(rows) > limit:
                return rows
            if not rows:
                break  # none in the first look: rarely together, the index is the quicker way (WALK_MESSAGES_FIRST)
    if in_messages is NOT_YET:
        in_messages = conversations_with_text(conn, q)
    condition = _search_condition(conn, q, in_messages)
    if condition is None:
        return []
    if conn.dialect.name != "postgresql":
        return conn.execute(stmt.where(condition)).all()
    return _ids_first(conn, condition, own, on_customer, limit)


def _ids_first(conn, condition, own: list, on_customer: list, limit: int) -> list:
    """PostgreSQL: the rows of a q= listing by the indexes, its page of ids picked first, from the
    conversations alone where the conditions allow, then the columns of those. Walking the
    activity index, the planner otherwise reads each conversation's row on the way, matching or
    not, for the customer it joins (9 ms against 1.5 for a text in 500 conversations of
    100,000; the activity index alone holds the id)."""
    picked = select(conversation_t.c.id).where(*own, condition)
    if on_customer or customer_t in find_tables(condition, check_columns=True):
        picked = picked.join(customer_t, customer_t.c.id == conversation_t.c.customer_id).where(*on_customer)
    page = picked.order_by(conversation_t.c.last_message_at.desc(), conversation_t.c.id.desc()).limit(limit + 1).subquery()
    rows = (
        select(*_LIST_COLS)
        .select_from(page)
        .join(conversation_t, conversation_t.c.id == page.c.id)
        .join(customer_t, customer_t.c.id == conversation_t.c.customer_id)
        .order_by(conversation_t.c.last_message_at.desc(), conversation_t.c.id.desc())
    )
    return conn.execute(rows).all()


# PostgreSQL cannot tell how soon a walk meets a page of matches: within a few thousand
# conversations it would rather read them all, join every customer by hash and sort (15-25 ms),
# than follow the activity index and stop at the page's end.
def _walk(conn, statement) -> list:
    with planner_off(conn, "bitmapscan", "hashjoin", "sort"):
        return conn.execute(statement).all()


def _has_search_indexes(conn) -> bool:
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
    start with it (_two_characters). Not a text holding the mark indexed after each document
    (hub.store.db.SEARCH_END): the index would find it at every document's end; the plain query does not."""
    return (
        conn.dialect.name == "sqlite"
        and len(q) >= SEARCH_MIN_CHARS - 1
        and SEARCH_END not in q
        and _has_search_indexes(conn)
    )


_TERMS_BETWEEN = sql_text(f"SELECT term FROM {SEARCH_TERMS} WHERE term >= :low AND term <= :high")


def _two_characters(conn, q: str) -> str:
    """The FTS5 query for a text of two characters: the index's trigrams that start with it, each
    quoted, OR-ed. Every document is indexed with a mark after it (hub/store/db.py), so every
    occurrence of the two characters, the document's last two included, starts one. The terms
    are read by range from the index's vocabulary (0.1-1 ms at 100,000 conversations, as it
    counts each term's documents; reading all of it took ~75 ms), from q folded as the tokenizer
    folds (hub.store.db.search_fold: not as str.lower() folds beyond ASCII). A trigram is three
    characters, the third at most U+10FFFF: the range holds all that start with q. No such
    term: q quoted, which has no trigram and so matches nothing (FTS5's documentation)."""
    low = search_fold(q)
    terms = conn.execute(_TERMS_BETWEEN, {"low": low, "high": low + "\U0010ffff"}).scalars().all()
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms or [q])


def _pg_answers(conn, q: str) -> bool:
    """PostgreSQL: whether indexes find the rows holding q: pg_trgm's (migration 0003) for three
    characters or more, those of search_bigrams() (migration 0014) for two; each checked once per
    engine. One character: neither (a scan)."""
    if len(q) == SEARCH_MIN_CHARS - 1:
        return _search_objects_exist(conn, _PG_BIGRAM_INDEXES)
    return len(q) >= SEARCH_MIN_CHARS and _has_search_indexes(conn)


def _bigrams_hold(column, q: str, pattern: str):
    """PostgreSQL, two characters: the column's bigrams (an index of migration 0014) hold q's,
    then ILIKE decides, so that what is found is what the plain query finds (the bigrams are of
    lower(), as ILIKE folds; q's bigrams rather than lower(q): the one where lower() changes the
    length, as ICU's can)."""
    return and_(func.search_bigrams(column).op("@>")(func.search_bigrams(q)), column.ilike(pattern, escape="\\"))


def _search_candidates(conn, q: str) -> tuple[list[int] | None, bool]:
    """Ids of the conversations q matches by subject, customer name or address, through the
    trigram indexes (PostgreSQL, two characters: the bigram indexes); (None, common): the indexes
    cannot answer, or (common) the text matches SEARCH_MAX_CANDIDATES rows or more."""
    if not (_fts_answers(conn, q) if conn.dialect.name == "sqlite" else _pg_answers(conn, q)):
        return None, False
    limit = SEARCH_MAX_CANDIDATES
    if conn.dialect.name == "sqlite":
        try:
            if len(q) < SEARCH_MIN_CHARS:
                phrase = _two_characters(conn, q)
            else:
                # A quoted FTS5 phrase: the text as it is (only '"' needs doubling); trigram phrases
                # match where the trigrams follow each other, so exactly where the text occurs.
                phrase = '"' + q.replace('"', '""') + '"'
            params = {"phrase": phrase, "pattern": like_pattern(q), "limit": limit}
            rows = conn.execute(_FTS_CANDIDATES, params).scalars().all()
        except DBAPIError as exc:  # a damaged index (hub/store/db.py rebuilds it on the next write)
            log.warning("inbox search index unusable, searching without it: %s", exc.orig)
            return None, False
    else:
        pattern = like_pattern(q)
        if len(q) < SEARCH_MIN_CHARS:  # two characters (_pg_answers): no trigram; bigrams, then ILIKE
            by_subject = select(conversation_t.c.id).where(_bigrams_hold(conversation_t.c.subject, q, pattern))
            customers = select(customer_t.c.id).where(_bigrams_hold(customer_t.c.name, q, pattern)).union(
                select(identity_t.c.customer_id).where(_bigrams_hold(identity_t.c.address, q, pattern))
            )
            by_customer = select(conversation_t.c.id).where(conversation_t.c.customer_id.in_(customers))
        else:
            by_subject = select(conversation_t.c.id).where(conversation_t.c.subject.ilike(pattern, escape="\\"))
            by_customer = select(conversation_t.c.id).where(conversation_t.c.customer_id.in_(_matching_customers(pattern)))
        # PostgreSQL misjudges how selective ILIKE '%text%' is and would rather scan the tables
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


def _one_of(conn, ids: list[int]):
    """conversation.id among up to SEARCH_MAX_CANDIDATES + MAX_MESSAGE_HITS ids."""
    if conn.dialect.name == "postgresql":
        literal = "{" + ",".join(str(int(i)) for i in ids) + "}"
        return _ID_ARRAY.bindparams(bindparam("search_ids", literal, type_=NullType()))
    return conversation_t.c.id.in_(ids)


_PLANNER_FOR_SEARCH = sql_text(
    "SELECT set_config('enable_seqscan', 'off', true), set_config('plan_cache_mode', 'force_custom_plan', true)"
)
_SEQSCAN_ON = sql_text("RESET enable_seqscan")  # back to the session's setting


def list_conversations(engine: Engine, f: ConversationFilter) -> dict[str, Any]:
    """Newest activity first, keyset-paginated: a page costs the same at any depth."""
    if f.status is not None and f.status not in ConversationStatus.__members__:
        raise RejectedInput(f"status must be one of: {', '.join(ConversationStatus.__members__)}")
    limit = max(1, min(f.limit, MAX_PAGE))
    own: list = []  # conditions on the conversation's own columns
    if f.status:
        own.append(conversation_t.c.status == f.status)
    if f.channel:
        own.append(conversation_t.c.channel == f.channel)
    if f.assignee is not None:
        own.append(conversation_t.c.assignee_id.is_(None) if f.assignee == 0 else conversation_t.c.assignee_id == f.assignee)
    if f.customer is not None:
        own.append(conversation_t.c.customer_id == f.customer)
    cursor = decode_cursor(f.cursor) if f.cursor else None
    if cursor:
        own.append(tuple_(conversation_t.c.last_message_at, conversation_t.c.id) < tuple_(*cursor))
    on_customer: list = []
    if f.segment is not None:
        from hub.store.models import Segment  # here, not at the top: the import block is shared

        if f.segment not in Segment.__members__:
            raise RejectedInput(f"segment must be one of: {', '.join(Segment.__members__)}")
        on_customer.append(customer_t.c.segment == f.segment)
    stmt = select(*_LIST_COLS).join(customer_t, customer_t.c.id == conversation_t.c.customer_id).where(*own, *on_customer)
    stmt = stmt.order_by(conversation_t.c.last_message_at.desc(), conversation_t.c.id.desc()).limit(limit + 1)
    with read_tx(engine) as conn:
        rows = _search_page(conn, stmt, f.q, own, on_customer, limit) if f.q else conn.execute(stmt).all()
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].last_message_at, page[-1].id) if len(rows) > limit else None
    return {"items": [_conversation_dict(r) for r in page], "next_cursor": next_cursor}


def _delivery(row) -> dict[str, Any] | None:
    if row.outbox_status is None:
        return None
    return {
        "state": DELIVERY_STATE.get(row.outbox_status, row.outbox_status),
        "attempts": row.outbox_attempts,
        "last_error": row.outbox_error,
        "next_attempt_at": iso(row.outbox_next) if row.outbox_status == OutboxStatus.pending else None,
        "sent_at": iso(row.outbox_sent_at),
    }


def messages_with_sender_and_delivery():
    """The select every view of messages starts from: each message with its sender's identity and
    its outbox row (the delivery state of a reply)."""
    return (
        select(
            message_t,
            identity_t.c.kind.label("sender_kind"),
            identity_t.c.address.label("sender_address"),
            identity_t.c.display_name.label("sender_name"),
            outbox_t.c.status.label("outbox_status"),
            outbox_t.c.attempts.label("outbox_attempts"),
            outbox_t.c.last_error.label("outbox_error"),
            outbox_t.c.next_attempt_at.label("outbox_next"),
            outbox_t.c.sent_at.label("outbox_sent_at"),
        )
        .outerjoin(identity_t, identity_t.c.id == message_t.c.identity_id)
        .outerjoin(outbox_t, outbox_t.c.message_id == message_t.c.id)
    )


def attachments_of(conn, message_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The attachments of these messages, by message id."""
    found: dict[int, list[dict[str, Any]]] = {}
    if message_ids:
        for att in conn.execute(select(attachment_t).where(attachment_t.c.message_id.in_(message_ids))).all():
            found.setdefault(att.message_id, []).append(
                {"id": att.id, "filename": att.filename, "content_type": att.content_type, "size": att.size, "sha256": att.sha256}
            )
    return found


def get_conversation(engine: Engine, conversation_id: int) -> dict[str, Any]:
    with read_tx(engine) as conn:
        conv = conn.execute(
            select(*_LIST_COLS)
            .join(customer_t, customer_t.c.id == conversation_t.c.customer_id)
            .where(conversation_t.c.id == conversation_id)
        ).first()
        if conv is None:
            raise NotFound(f"conversation {conversation_id} does not exist")
        rows = conn.execute(
            messages_with_sender_and_delivery()
            .where(message_t.c.conversation_id == conversation_id)
            .order_by(message_t.c.id)
        ).all()
        attachments = attachments_of(conn, [r.id for r in rows])
    out = _conversation_dict(conv)
    out["messages"] = [
        {
            "id": r.id,
            "direction": r.direction,
            "channel": r.channel,
            "external_id": r.external_id,
            "sender": {"kind": r.sender_kind, "address": r.sender_address, "name": r.sender_name}
            if r.identity_id
            else None,
            "author_agent_id": r.author_agent_id,
            "subject": r.subject,
            "text": r.text,
            "html": r.html,
            "sent_at": iso(r.sent_at),
            "created_at": iso(r.created_at),
            "attachments": attachments.get(r.id, []),
            "delivery": _delivery(r),
            # Sent by the hub on its own (an answer from the back end's facts), not by an agent.
            "automatic": bool((r.metadata or {}).get("automatic")),
        }
        for r in rows
    ]
    return out


def require_conversation(conn, conversation_id: int):
    row = conn.execute(select(conversation_t).where(conversation_t.c.id == conversation_id)).first()
    if row is None:
        raise NotFound(f"conversation {conversation_id} does not exist")
    return row


AGENT_FIELDS = ("status", "priority", "assignee_id")


def update_conversation(
    engine: Engine, conversation_id: int, changes: dict[str, Any], actor: Principal, *, expected_version: int | None = None,
) -> dict[str, Any]:
    """Apply status / assignee_id / priority: only the keys given (the others stay as they are);
    unknown keys are the caller's bug, not silently ignored.

    expected_version: the conversation's version the change was made on (what the agent saw).
    When it has another version now, nothing is written and StaleVersion carries the current
    state; the check is the UPDATE's own WHERE, so of two changes made on one version exactly one
    is written. Without it, each given field is written whatever changed meanwhile."""
    unknown = set(changes) - set(AGENT_FIELDS)
    if unknown:
        raise RejectedInput(f"a conversation's {', '.join(sorted(unknown))} cannot be changed here; only {', '.join(AGENT_FIELDS)}")
    values: dict[str, Any] = {}
    now = utcnow()
    with write_tx(engine) as conn:
        require_conversation(conn, conversation_id)
        if "status" in changes:
            status = changes["status"]
            if status not in ConversationStatus.__members__:
                raise RejectedInput(f"status must be one of: {', '.join(ConversationStatus.__members__)}")
            values["status"] = status
            if status == ConversationStatus.resolved:
                values["resolved_at"] = now
            elif status in (ConversationStatus.open, ConversationStatus.pending):
                values["resolved_at"] = None
        if "priority" in changes:
            if changes["priority"] not in Priority.__members__:
                raise RejectedInput(f"priority must be one of: {', '.join(Priority.__members__)}")
            values["priority"] = changes["priority"]
        if "assignee_id" in changes:
            assignee = changes["assignee_id"]
            if assignee is not None:
                ok = conn.execute(
                    select(agent_t.c.id).where(agent_t.c.id == assignee, agent_t.c.active.is_(True))
                ).first()
                if ok is None:
                    raise RejectedInput(f"agent {assignee} does not exist or is inactive")
            values["assignee_id"] = assignee
        if values:
            stmt = update(conversation_t).where(conversation_t.c.id == conversation_id)
            if expected_version is not None:
                stmt = stmt.where(conversation_t.c.version == expected_version)
            written = conn.execute(
                stmt.values(**values, updated_at=now, version=bumped()).returning(conversation_t.c.version)
            ).first()
            if written is None:
                raise _stale(conn, conversation_id, expected_version)
            audit(conn, actor.actor, "conversation.update", f"conversation:{conversation_id}", version=written.version,
                  **{k: v for k, v in changes.items() if k in AGENT_FIELDS})
            if values.get("status") == ConversationStatus.resolved:
                from hub.csat.surveys import queue_survey  # one satisfaction survey per conversation, in this transaction

                queue_survey(conn, conversation_id, now=now)
    return get_conversation(engine, conversation_id)


def conversation_state(conn, conversation_id: int) -> dict[str, Any]:
    """One conversation as the listing shows it (no messages), read on the caller's connection."""
    row = conn.execute(
        select(*_LIST_COLS).join(customer_t, customer_t.c.id == conversation_t.c.customer_id).where(conversation_t.c.id == conversation_id)
    ).first()
    if row is None:
        raise NotFound(f"conversation {conversation_id} does not exist")
    return _conversation_dict(row)


def _stale(conn, conversation_id: int, expected_version: int) -> StaleVersion:
    # Read in the writer's transaction: on PostgreSQL each statement sees what was committed
    # before it, so this is the state that made the UPDATE miss.
    current = conversation_state(conn, conversation_id)
    return StaleVersion(
        f"conversation {conversation_id} was changed after version {expected_version}, which this change was made on "
        f"(it is at version {current['version']} now), so nothing was changed. Look at its current state "
        f"(the error's detail) and make the change again if it still holds.",
        detail={"version": current["version"], "conversation": current},
    )


# Channels a customer cannot be answered on (a form has no way back, a call was a call): replies
# go by email to the customer's address.
ANSWERED_BY_EMAIL = {"webform", "voice"}


# Channels a reply can be sent on to any of the customer's addresses of that kind, whatever channel
# the conversation came by (an agent answering a call's transcript on Telegram, say).
REPLY_CHANNELS = {"email": "email", "telegram": "telegram"}


def _customer_address(conn, conv, kind: str) -> str | None:
    return conn.execute(
        select(identity_t.c.address)
        .where(identity_t.c.customer_id == conv.customer_id, identity_t.c.kind == kind)
        .order_by(identity_t.c.verified.desc(), identity_t.c.id.desc())
        .limit(1)
    ).scalar()


def _latest_channel(conn, conv) -> str:
    """The channel of the customer's latest message in the conversation (a conversation may go on
    across channels): where a reply goes by default."""
    latest = (
        select(message_t.c.channel)
        .join(identity_t, identity_t.c.id == message_t.c.identity_id)
        .where(message_t.c.conversation_id == conv.id, message_t.c.direction == Direction.inbound,
               identity_t.c.customer_id == conv.customer_id)
        .order_by(message_t.c.id.desc())
        .limit(1)
    )
    return conn.execute(latest).scalar() or conv.channel


def _recipient(conn, conv, channel: str | None = None) -> tuple[str, str, list[str]]:
    """(channel, recipient, reply_to) of a reply: by default on the channel of the customer's
    latest message in the conversation, to the address they last wrote from on it, with the
    external ids of the inbound messages on it, that message first, for threading in the customer's
    client. `channel` names another channel to answer on: the customer's address of that kind.

    Never somebody else who wrote into the conversation (a colleague on Cc): a reply, and above all
    an automatic answer with order facts, goes to the customer whose conversation it is, whoever
    wrote last."""
    home = _latest_channel(conn, conv)
    default = "email" if home in ANSWERED_BY_EMAIL else home
    channel = channel or default
    if channel != home and conn.execute(
        select(message_t.c.id).where(message_t.c.conversation_id == conv.id, message_t.c.direction == Direction.inbound,
                                     message_t.c.channel == channel).limit(1)
    ).first():
        home = channel  # the customer wrote on it too: answer in that thread
    if channel != home:
        if channel not in REPLY_CHANNELS:
            raise RejectedInput(f"a reply cannot be sent on {channel!r}; choose one of: {', '.join(sorted(REPLY_CHANNELS))}")
        address = _customer_address(conn, conv, REPLY_CHANNELS[channel])
        if address is None:
            how = " call them back, or" if home == "voice" else ""
            raise RejectedInput(
                f"conversation {conv.id} came by {home} and its customer has no {channel} address to answer;"
                f"{how} add one to the customer"
            )
        return channel, address, []
    inbound = (
        select(message_t.c.external_id, identity_t.c.address)
        .join(identity_t, identity_t.c.id == message_t.c.identity_id)
        .where(
            message_t.c.conversation_id == conv.id,
            message_t.c.direction == Direction.inbound,
            message_t.c.channel == home,
        )
        .order_by(message_t.c.id.desc())
    )
    recent = conn.execute(inbound.limit(10)).all()
    if not recent:
        raise RejectedInput(f"conversation {conv.id} has no inbound message on {home} to reply to")
    own = conn.execute(inbound.where(identity_t.c.customer_id == conv.customer_id).limit(1)).first()
    if own is not None:
        address, answered = own.address, own.external_id
    else:
        # The customer's own messages came from an address that is no longer theirs (an identity
        # moved to another customer): their address of the channel's kind, if any.
        address = _customer_address(conn, conv, REPLY_CHANNELS.get(home, home))
        if address is None:
            raise RejectedInput(
                f"conversation {conv.id} has no message from its customer's own {home} address to answer; "
                "add one to the customer or answer on another channel"
            )
        answered = None
    ids = [answered] if answered else []
    ids += [r.external_id for r in recent if r.external_id and r.external_id != answered]
    return home, address, ids


def reply_recipient(engine: Engine, conversation_id: int, channel: str | None = None) -> dict[str, Any]:
    """Where a reply to the conversation goes, for the agent to see before sending:
    {"channel", "address", "name"}, or {"channel", "error"} when it cannot go anywhere."""
    with read_tx(engine) as conn:
        conv = require_conversation(conn, conversation_id)
        name = conn.execute(select(customer_t.c.name).where(customer_t.c.id == conv.customer_id)).scalar()
        try:
            channel, address, _ = _recipient(conn, conv, channel)
        except RejectedInput as exc:
            return {"channel": channel or conv.channel, "address": None, "name": name, "error": exc.message}
    return {"channel": channel, "address": address, "name": name, "error": None}


def queue_outbound(
    conn, conv, text: str, *, html: str | None = None, author_agent_id: int | None = None, attachments: list[dict] = (),
    metadata: dict | None = None, channel: str | None = None, to: str | None = None,
) -> int:
    """Store an outbound message and its outbox row, in the caller's transaction, on `channel` or
    else the conversation's way back (see _recipient). Returns the message id. Used for agents'
    replies and the hub's own messages.
    attachments: stored blobs ({filename, content_type, size, sha256}); the worker loads them.
    to: this exact address on `channel` and no other (an order's status to the order's own address)."""
    now = utcnow()
    if to is not None:
        if channel is None:
            raise RejectedInput("a message to a given address needs its channel")
        recipient, reply_to = to, []
    else:
        channel, recipient, reply_to = _recipient(conn, conv, channel)
    subject = f"Re: {conv.subject or 'Your request'} [#{conv.id}]"
    clean_html = sanitize_html(html)
    message_id = conn.execute(
        message_t.insert()
        .values(
            conversation_id=conv.id,
            direction=Direction.outbound,
            channel=channel,
            author_agent_id=author_agent_id,
            subject=subject,
            text=text,
            html=clean_html,
            sent_at=now,
            created_at=now,
            # Whom it went to: who may later thread into the conversation by naming it (hub/ingest/threading_rules.py).
            metadata={**(metadata or {}), "to": [recipient]},
        )
        .returning(message_t.c.id)
    ).scalar_one()
    if attachments:
        conn.execute(attachment_t.insert(), [dict(a, message_id=message_id) for a in attachments])
    enqueue(
        conn,
        kind="message",
        channel=channel,
        message_id=message_id,
        idempotency_key=f"message:{message_id}",
        payload={
            "conversation_id": conv.id,
            "channel": channel,
            "recipient": recipient,
            "text": text,
            "html": clean_html,
            "subject": subject,
            "reply_to": reply_to,
            "thread_key": conv.thread_key,
            "attachments": list(attachments),
        },
    )
    return message_id


def reply(
    engine: Engine,
    conversation_id: int,
    actor: Principal,
    text: str,
    html: str | None = None,
    *,
    attachments: list[tuple[str, str, bytes]] = (),
    blobs: BlobStore | None = None,
    channel: str | None = None,
) -> dict[str, Any]:
    """Store an agent's reply and queue its delivery, in one transaction. attachments are
    (filename, content_type, bytes), stored content-addressed in `blobs` first. channel: answer on
    another channel than the conversation's (email or telegram, to the customer's address)."""
    if not text or not text.strip():
        raise RejectedInput("a reply needs text")
    if attachments and blobs is None:
        raise RejectedInput("this hub has no blob store for attachments")
    stored = [
        {"filename": name[:300], "content_type": ctype[:200], "size": len(data), "sha256": blobs.put(data)}
        for name, ctype, data in attachments
    ]
    now = utcnow()
    with write_tx(engine) as conn:
        conv = require_conversation(conn, conversation_id)
        message_id = queue_outbound(
            conn, conv, text, html=html, author_agent_id=actor.id if actor.is_agent else None, attachments=stored,
            channel=channel,
        )
        values: dict[str, Any] = {"updated_at": now}
        if conv.first_response_at is None:
            values["first_response_at"] = now
        if conv.status == ConversationStatus.open:
            values["status"] = ConversationStatus.pending  # waiting for the customer now
        if len(values) > 1:
            values["version"] = bumped()
        conn.execute(update(conversation_t).where(conversation_t.c.id == conv.id).values(**values))
    return _message(engine, message_id)


def add_note(engine: Engine, conversation_id: int, actor: Principal, text: str) -> dict[str, Any]:
    """An internal note: stored in the conversation, never sent to the customer, with the agents
    it @mentions (hub/conversations/mentions.py) in the same transaction."""
    if not text or not text.strip():
        raise RejectedInput("a note needs text")
    now = utcnow()
    with write_tx(engine) as conn:
        conv = require_conversation(conn, conversation_id)
        message_id = conn.execute(
            message_t.insert()
            .values(
                conversation_id=conv.id,
                direction=Direction.note,
                channel=conv.channel,
                author_agent_id=actor.id if actor.is_agent else None,
                text=text,
                sent_at=now,
                created_at=now,
                metadata={},
            )
            .returning(message_t.c.id)
        ).scalar_one()
        mentions.record_in(conn, message_id, text)
    return _message(engine, message_id)


def _message(engine: Engine, message_id: int) -> dict[str, Any]:
    with read_tx(engine) as conn:
        conversation_id = conn.execute(
            select(message_t.c.conversation_id).where(message_t.c.id == message_id)
        ).scalar_one()
    conv = get_conversation(engine, conversation_id)
    return next(m for m in conv["messages"] if m["id"] == message_id)
