"""The page of a listing with q=: which conversations match, found the cheapest way for the text.

q= finds the text anywhere in a conversation's subject, its customer's name or one of the
customer's addresses (substrings.py), and its words in the conversation's messages
(message_words.py). Where the indexes answer, the matching conversations are collected through
them and then paged like any other filter (_search_condition). A text so common that collecting
every match would cost more than a page walks the listing in activity order instead, checking
each conversation: a page of matches is met after a short walk. Where the indexes cannot tell
cheaply that a text is common (under three characters, no indexes, PostgreSQL), a look at the
newest conversations decides (common_recently), and the walk goes back a bounded way before the
indexes are asked after all (search_page).
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import String, bindparam, func, or_, select, tuple_
from sqlalchemy.sql.util import ClauseAdapter, find_tables

from hub.conversations.queries import LIST_COLUMNS, conversation_t, customer_t
from hub.conversations.search import substrings
from hub.conversations.search.message_words import common_in_messages, conversations_with_text, message_holds, message_like
from hub.store.sql import like_pattern, planner_off

COMMON_PROBE = 200  # newest conversations a text is tried on (common_recently)
COMMON_PROBE_HITS = 5  # 2.5% of them: a page of 50 after a walk of ~2,000
WALK_CONVERSATIONS = 5000  # how far back the walk for a common text goes before the indexes are asked
WALK_MESSAGES_CONVERSATIONS = 300  # the same for common message words (each step reads ~10 messages: ~20 µs)
# The walk for message words looks at this many first: where none of them holds the words, they
# are rarely together (under one conversation in 100), a walk of 300 would meet a few matches at
# most and not fill a page, and the index is asked at once (two common words never together:
# ~2 ms of walk instead of ~6.5, then the index's ~10).
WALK_MESSAGES_FIRST = 100
NOT_YET = object()  # the message matches, not looked up (yet)


def _search_condition(conn, q: str, in_messages: set[int] | None):
    """The WHERE of a q= listing; None when nothing can match. in_messages: the conversations
    with a message holding q's words (None: no message index here)."""
    pattern = like_pattern(q)
    ids, common = substrings.candidates(conn, q)
    if ids is not None:
        if in_messages is None:
            return or_(substrings.one_of(conn, ids), message_like(pattern)) if ids else message_like(pattern)
        found = list(dict.fromkeys([*ids, *sorted(in_messages)]))
        return substrings.one_of(conn, found) if found else None
    dialect = conn.dialect.name
    by_text = substrings.matches_common(dialect, q) if common else substrings.matches_like(dialect, q)
    if in_messages is None:
        return or_(by_text, message_like(pattern))
    return or_(by_text, substrings.one_of(conn, sorted(in_messages))) if in_messages else by_text


def _walk_condition(conn, q: str, in_messages: set[int] | None):
    """The WHERE of the activity-order walk for a common text: each conversation checked."""
    if in_messages is None:
        return or_(substrings.matches_common(conn.dialect.name, q), message_like(like_pattern(q)))
    by_text = substrings.matches_common(conn.dialect.name, q)
    return or_(by_text, substrings.one_of(conn, sorted(in_messages))) if in_messages else by_text


def common_recently(conn, q: str) -> bool:
    """Whether q's text is in the subject, customer or address of COMMON_PROBE_HITS of the newest
    COMMON_PROBE conversations: then a walk in activity order meets a page of matches soon. Asked
    where the indexes cannot say how common the text is cheaply: a text under three characters
    (two characters are common more often than not, and the indexes would read 5,000
    conversations before saying so: 10-25 ms), a store without the indexes, and PostgreSQL,
    whose trigram index collects every match of a common text before any LIMIT applies (20-70 ms
    for a text in 5% of 100,000 conversations). Costs a look at COMMON_PROBE conversations
    (1-4 ms)."""
    if substrings.index_counts(conn, q):
        return False  # FTS5 finds out cheaply (substrings.candidates)
    params = {"probe_q": q, "probe_newest": COMMON_PROBE, "probe_hits": COMMON_PROBE_HITS}
    return conn.execute(_common_probe(conn.dialect.name), params).scalar() >= COMMON_PROBE_HITS


@lru_cache(maxsize=2)
def _common_probe(dialect: str):
    """How many of the newest :probe_newest conversations (up to :probe_hits) the walk's
    condition holds for; built once (adapting the condition to the subquery costs ~1.5 ms)."""
    newest = (
        select(conversation_t.c.id, conversation_t.c.subject, conversation_t.c.customer_id)
        .order_by(conversation_t.c.last_message_at.desc(), conversation_t.c.id.desc())
        .limit(bindparam("probe_newest"))
        .subquery()
    )
    # The condition the walk checks, on these rows (the subquery's columns for the conversation's).
    matches = ClauseAdapter(newest).traverse(substrings.matches_common(dialect, bindparam("probe_q", type_=String)))
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


def search_page(conn, stmt, q: str, own: list, on_customer: list, limit: int) -> list:
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
    if common_words or common_recently(conn, q):
        if common_words:
            condition = or_(substrings.matches_common(conn.dialect.name, q), message_holds(q))
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
        select(*LIST_COLUMNS)
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

