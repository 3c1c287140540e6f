"""Full-text search over what was written in the conversations, for the q= of a listing.

q= finds a conversation when one of its messages holds every word of the query, as whole words;
hub/conversations/search/page.py adds this to the substring search over subjects, customer names
and addresses (substrings.py). No prefixes ("refun"* merges the lists of every word it starts: 10-60 ms for a common
start on a million messages) and no stemming (messages come in every language). Words are
compared case- and accent-insensitively. Chinese, Japanese and Korean are written without spaces between words, so
their characters are indexed one by one and a query's run of them must occur in that order:
"退货" finds "我要退货".

SQLite: an FTS5 table, `search_message` (unicode61 words; rowid = message id), holding each
message's text with spaces around CJK characters. Ingest never writes to it: a background indexer
(message_index.MessageIndexer, in every hub process) adds the messages above a watermark, in batches, giving way
to ingest during a burst. Until then a search reads the messages above the watermark with LIKE,
so nothing just stored is missed. Triggers (migration 0011) take an edited or deleted message out
of the index at once and queue it in `search_message_stale` to be added again with its new text
(searched with LIKE meanwhile); that is how an erased text leaves the index.

PostgreSQL: each message's words, to_tsvector('search_words', the text with spaces around CJK
characters), search_words being 'simple' with accents folded (migration 0011), in a stored
generated column with a GIN index (migration 0012); PostgreSQL keeps both up to date itself.

A word found in very many messages (more than MAX_MESSAGE_HITS) lists the conversations of its
MAX_MESSAGE_HITS most recent matching messages: collecting every match would cost more than a
search may, and the most recent ones are what an agent looks for. On PostgreSQL, words common
enough for that are first checked in the messages of each conversation the listing walks
(common_in_messages, message_holds), which misses none of them.
"""

from __future__ import annotations

import logging
import re
import time
import weakref
from dataclasses import dataclass

from sqlalchemy import bindparam, func, literal_column, select
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from hub.store.fold import search_fold, sqlite_like
from hub.store.models import Conversation, Message
from hub.store.sql import like_pattern, planner_off

log = logging.getLogger(__name__)
message_t = Message.__table__
conversation_t = Conversation.__table__

SEARCH_MESSAGE = "search_message"
SEARCH_MESSAGE_STATE = "search_message_state"
SEARCH_MESSAGE_STALE = "search_message_stale"
PG_MESSAGE_INDEX = "search_message_tsv"  # migration 0012, on the column PG_COLUMN
PG_COLUMN = "search_tsv"  # the words of each message, PG_DOCUMENT stored with the row
MAX_MESSAGE_HITS = 2000

# Hiragana and katakana, CJK ideographs (and extension A, compatibility), Hangul syllables.
CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK_CHAR = re.compile(f"([{CJK_RANGES}])")
_WORD = re.compile(r"\w")

# The words of a message on PostgreSQL, exactly as migrations 0011 and 0012 compute them into the
# column PG_COLUMN. regexp_replace understands the \uXXXX escapes itself.
PG_CJK_PATTERN = "([\\u3040-\\u30ff\\u3400-\\u4dbf\\u4e00-\\u9fff\\uac00-\\ud7af\\uf900-\\ufaff])"
PG_CONFIG = "search_words"  # 'simple' with accents folded (unaccent) where the extension exists
PG_DOCUMENT = f"to_tsvector('{PG_CONFIG}'::regconfig, regexp_replace(coalesce(text, ''), '{PG_CJK_PATTERN}', ' \\1 ', 'g'))"


def index_text(text: str) -> str:
    """What the index holds for a text: CJK characters made words of their own."""
    return _CJK_CHAR.sub(r" \1 ", text)


@dataclass(frozen=True)
class MessageQuery:
    """A q= as phrases that must all occur in one message; `words` are the same as typed, for
    LIKE on the messages the index does not hold."""

    phrases: tuple[str, ...]
    words: tuple[str, ...]

    def fts5(self) -> str:
        return " ".join('"' + p.replace('"', '""') + '"' for p in self.phrases)


def parse_query(q: str) -> MessageQuery | None:
    """None when q has no word to look for (only punctuation, say)."""
    words = [chunk for chunk in q.split() if _WORD.search(chunk)]
    if not words:
        return None
    return MessageQuery(tuple(index_text(word).strip() for word in words), tuple(words))


# --- which conversations a query finds in their messages -------------------------------------------

_present: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


def has_message_index(conn: Connection) -> bool:
    """Whether migrations 0011 (and on PostgreSQL 0012) could create the index here (checked once
    per engine)."""
    found = _present.get(conn.engine)
    if found is None:
        if conn.dialect.name == "sqlite":
            probe = f"SELECT count(*) FROM sqlite_master WHERE name IN ('{SEARCH_MESSAGE}', '{SEARCH_MESSAGE_STATE}')"
            found = conn.exec_driver_sql(probe).scalar() == 2
        else:
            probe = f"SELECT count(*) FROM pg_indexes WHERE indexname = '{PG_MESSAGE_INDEX}'"
            found = conn.exec_driver_sql(probe).scalar() == 1
        _present[conn.engine] = found
    return found


# The newest MAX_MESSAGE_HITS indexed matches (FTS5 walks its doclists backwards and stops), and
# the messages the index does not hold yet or holds no more (above the watermark, or stale),
# compared with LIKE, a word at a time, both sides folded for case and accents (search_fold,
# hub/store/fold.py) as the index folds them: "cafe" finds "café" before the indexer has run too.
_SQLITE_CONVERSATIONS = f"""
    SELECT conversation_id FROM message WHERE id IN (
        SELECT rowid FROM {SEARCH_MESSAGE} WHERE {SEARCH_MESSAGE} MATCH :fts ORDER BY rowid DESC LIMIT :limit)
    UNION
    SELECT conversation_id FROM message
    WHERE id > (SELECT indexed_to FROM {SEARCH_MESSAGE_STATE}) AND {{like}}
    UNION
    SELECT conversation_id FROM message
    WHERE id IN (SELECT message_id FROM {SEARCH_MESSAGE_STALE}) AND {{like}}
    """


def _sqlite_conversations(query: MessageQuery):
    like = " AND ".join(sqlite_like("text", f":word_{n}") for n in range(len(query.words)))
    params = {"fts": query.fts5(), "limit": MAX_MESSAGE_HITS}
    params.update((f"word_{n}", like_pattern(search_fold(word))) for n, word in enumerate(query.words))
    return sql_text(_SQLITE_CONVERSATIONS.format(like=like)), params


def _pg_tsquery(query: MessageQuery):
    """The phrases as one tsquery, parsed by PostgreSQL as it parsed the messages."""
    config = literal_column(f"'{PG_CONFIG}'::regconfig")
    parts = [func.phraseto_tsquery(config, bindparam(f"phrase_{n}", p)) for n, p in enumerate(query.phrases)]
    combined = parts[0]
    for part in parts[1:]:
        combined = combined.op("&&")(part)
    return combined


def conversations_with_text(conn: Connection, q: str) -> set[int] | None:
    """Ids of the conversations with a message matching q; None when the store has no message
    index (the caller then looks at message text with LIKE)."""
    query = parse_query(q)
    if query is None:
        return set()
    if not has_message_index(conn):
        return None
    if conn.dialect.name == "sqlite":
        statement, params = _sqlite_conversations(query)
        try:
            return set(conn.execute(statement, params).scalars())
        except DBAPIError as exc:  # a damaged index: search the text itself
            log.warning("message search index unusable, searching without it: %s", exc.orig)
            return None
    return _pg_conversations(conn, query)


# PostgreSQL: the newest MAX_MESSAGE_HITS matches. For one word the planner knows how common it is
# (the statistics ANALYZE keeps on the column's words): it walks the newest messages checking
# their stored words for a common word, or reads the index for a rare one. Several words are
# read from the index, always: a listing asks here for words that are each common only after
# walking conversations found them rarely together (common_in_messages), and then a walk of the
# newest messages, which the planner may choose, could read every message (400 ms for two words
# each in one message of ten, never together, at 1,000,000 messages; the index: ~30 ms).
COMMON_WORD_SHARE = 0.05
_WORD_ESTIMATE = f"EXPLAIN (FORMAT JSON) SELECT 1 FROM message WHERE {PG_COLUMN} @@ phraseto_tsquery('{PG_CONFIG}'::regconfig, %(phrase)s)"


def _pg_conversations(conn: Connection, query: MessageQuery) -> set[int]:
    matches = literal_column(f"message.{PG_COLUMN}").op("@@")(_pg_tsquery(query))
    ranked = select(message_t.c.conversation_id).where(matches).order_by(message_t.c.id.desc()).limit(MAX_MESSAGE_HITS)
    index_only = ("indexscan", "seqscan") if len(query.phrases) > 1 else ()
    with planner_off(conn, *index_only):
        return set(conn.execute(select(ranked.subquery().c.conversation_id)).scalars())


# The estimates change only when ANALYZE runs (autovacuum does after some thousands of changed
# messages): each is asked once a minute per process, not on every listing (a statement per
# phrase and one for the table's size, ~0.5 ms each). An answer a minute old can only choose the
# slower of two ways to the same results (the walk or the index), never other results.
ESTIMATE_SECONDS = 60.0
_estimates: weakref.WeakKeyDictionary[Engine, dict[tuple[str, ...], tuple[float, bool]]] = weakref.WeakKeyDictionary()


def _all_common(conn: Connection, query: MessageQuery) -> bool:
    """Whether each phrase is in COMMON_WORD_SHARE of the messages or more, as the planner
    estimates it."""
    known = _estimates.setdefault(conn.engine, {})
    now = time.monotonic()
    hit = known.get(query.phrases)  # (when asked, the answer)
    if hit is not None and now - hit[0] < ESTIMATE_SECONDS:
        return hit[1]
    if len(known) > 1000:  # many different searches: start afresh rather than grow
        known.clear()
    common = _estimate_all_common(conn, query)
    known[query.phrases] = (now, common)
    return common


def _estimate_all_common(conn: Connection, query: MessageQuery) -> bool:
    total = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE oid = 'message'::regclass").scalar() or 0
    if total <= 0:  # never analysed: no statistics to go by
        return False
    for phrase in query.phrases:
        plan = conn.exec_driver_sql(_WORD_ESTIMATE, {"phrase": phrase}).scalar()
        if plan[0]["Plan"]["Plan Rows"] < COMMON_WORD_SHARE * total:
            return False
    return True


def common_in_messages(conn: Connection, q: str) -> bool:
    """PostgreSQL: whether every word of q is in COMMON_WORD_SHARE of the messages or more, as the
    planner estimates it. A listing then first checks the messages of each conversation it walks
    (message_holds): words asked for together mostly occur together, and a page of matches is
    met after a few dozen conversations, where collecting the newest MAX_MESSAGE_HITS matches
    first costs 10-40 ms. False on SQLite (FTS5 hands the newest matches over cheaply) and
    without the index."""
    if conn.dialect.name != "postgresql" or not has_message_index(conn):
        return False
    query = parse_query(q)
    return query is not None and _all_common(conn, query)


def message_holds(q: str):
    """PostgreSQL: the condition that one of the conversation's messages holds q's words, for a
    listing walking the conversations (through ix_message_conversation, each message's stored
    words checked). q must have words (common_in_messages said so)."""
    query = parse_query(q)
    words = literal_column(f"message.{PG_COLUMN}").op("@@")(_pg_tsquery(query))
    # OFFSET 0 keeps the check per conversation: without it PostgreSQL may turn the EXISTS into
    # a hashed set of every conversation with a matching message (the whole index read, 280 ms).
    held = select(message_t.c.id).where(message_t.c.conversation_id == conversation_t.c.id, words)
    return held.offset(0).exists()


def message_like(pattern: str):
    """The condition that one of the conversation's messages holds `pattern` (LIKE): for a store
    without the message index (a scan)."""
    return conversation_t.c.id.in_(select(message_t.c.conversation_id).where(message_t.c.text.ilike(pattern, escape="\\")))
