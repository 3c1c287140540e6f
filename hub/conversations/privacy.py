"""Privacy parts of the conversation tables: the customer's conversations and every message in
them, the messages they wrote into other customers' conversations, attachments, read marks and
mentions.

Export: the conversations with their messages (text, HTML, metadata), each with its attachments
(metadata and the file, base64) and mentions; the internal notes again on their own; the messages
they wrote elsewhere.

Erase: messages stay as rows (direction, channel, times: the volume report) with subject, text,
HTML, external id and identity cleared and only the metadata that says nothing about who wrote it
kept (the intent figures); their attachments and raw input files go. That holds for their messages
in other customers' conversations too. Other customers' messages that list one of their addresses
(To, Cc, the SMTP envelope) keep their text but lose the address and their raw source, whose headers
name them. Conversations keep what reports count (channel, times, status, priority, assignee,
intent, SLA times) and lose their subject and thread key. Read marks and mentions are agents' data
and stay. The inbox search indexes follow the columns: after the commit, SQLite's full-text
indexes are flushed and merged so no segment keeps the old words (PostgreSQL indexes the columns
themselves).
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass

from sqlalchemy import Engine, Text, bindparam, cast, delete, func, or_, select, text, update
from sqlalchemy.exc import DBAPIError

from hub.conversations.search.message_index import index_all_messages
from hub.conversations.search.message_words import SEARCH_MESSAGE
from hub.conversations.versions import bumped
from hub.privacy import (
    WHAT,
    Erasure,
    Export,
    Subject,
    among,
    chunks,
    register,
    register_after_erase,
    register_file_use,
    register_scope,
    rows_of,
)
from hub.store.db import SEARCH_TEXT, index_search_queue, is_sqlite, write_tx
from hub.store.models import Attachment, Conversation, ConversationTag, Direction, Mention, Message, ReadMark
from hub.store.sql import like_pattern

log = logging.getLogger(__name__)

conversation_t = Conversation.__table__
message_t = Message.__table__
attachment_t = Attachment.__table__
read_t = ReadMark.__table__
mention_t = Mention.__table__
tag_t = ConversationTag.__table__

ERASED_TEXT = ""
# Metadata that says nothing about who wrote it, kept for the intent figures.
KEEP_META = ("intent", "confidence")
RAW_KEY = "raw_sha256"  # a message's raw input as a blob (hub/ingest/pipeline.py)


def resolve_conversations(conn, subject: Subject) -> None:
    """Their conversations and messages, the messages they wrote into others' conversations, and
    others' messages that list one of their addresses (_Listed)."""
    subject.conversation_ids = list(conn.execute(
        select(conversation_t.c.id).where(among(conversation_t.c.customer_id, subject.customer_ids)).order_by(conversation_t.c.id)
    ).scalars())
    own = list(conn.execute(select(message_t.c.id).where(among(message_t.c.conversation_id, subject.conversation_ids))
                            .order_by(message_t.c.id)).scalars())
    owned = set(own)
    elsewhere = [m for m in conn.execute(select(message_t.c.id).where(among(message_t.c.identity_id, subject.identity_ids))
                                         .order_by(message_t.c.id)).scalars() if m not in owned]
    subject.message_ids = own + elsewhere
    subject.messages_elsewhere = elsewhere
    theirs = owned | set(elsewhere)
    subject.messages_naming = [m for m in _messages_listing(conn, subject, _Listed.of(subject)) if m not in theirs]
    subject.audit_targets += [f"conversation:{i}" for i in subject.conversation_ids]


# Where a message's metadata holds a record about a person, naming them by their Telegram user id:
# a contact card (contact.user_id), a forward's sender (forward_from.id, forward_origin.sender_user.id).
# Only there is a number taken for a Telegram user id: elsewhere the same digits are a message id,
# an update id, an amount, or the all-digit address of a web visitor.
_PERSON_KEYS = ("contact", "forward_from", "sender_user")
_USER_ID_KEYS = ("id", "user_id")
_PHONE_LIKE = re.compile(r"\+?[\d\s().-]{6,40}")


@dataclass(frozen=True)
class _Listed:
    """What of theirs another customer's message may list in its metadata: their email addresses
    (To, Cc, the envelope), their phone numbers (a contact card shared in a chat, a call's parties)
    and their Telegram user ids (a contact card, a forwarded message)."""

    emails: tuple[str, ...]
    phones: tuple[str, ...]  # E.164's digits, without the +
    telegram_ids: tuple[str, ...]

    @classmethod
    def of(cls, subject: Subject) -> _Listed:
        # Told apart by their stored forms (hub/contract/addresses.py): the identities themselves
        # are erased before the messages are.
        emails = sorted({a.lower() for a in subject.addresses if "@" in a})
        phones = sorted({a[1:] for a in subject.addresses if a.startswith("+") and a[1:].isdigit()})
        telegram = sorted({a for a in subject.addresses if a.lstrip("-").isdigit() and len(a) >= 5})
        return cls(tuple(emails), tuple(phones), tuple(telegram))

    @property
    def needles(self) -> tuple[str, ...]:
        """Texts one of which the stored JSON holds wherever it lists them (what the store is searched for)."""
        return self.emails + self.phones + self.telegram_ids

    def names(self, value) -> bool:
        """Whether a metadata value is (or holds) one of their email addresses or phone numbers."""
        if not isinstance(value, str):
            return False
        low = value.lower()
        if any(e in low for e in self.emails):
            return True
        return (bool(self.phones) and len(value) <= 40 and _PHONE_LIKE.fullmatch(value) is not None
                and "".join(c for c in value if c.isdigit()) in self.phones)

    def about_them(self, key: str, value) -> bool:
        """A record about them under one of _PERSON_KEYS: a dict whose id is their Telegram user id.
        It goes whole: its name and username say who they are as much as the id does."""
        if key not in _PERSON_KEYS or not isinstance(value, dict):
            return False
        ids = (value.get(k) for k in _USER_ID_KEYS)
        return any(str(i).strip() in self.telegram_ids for i in ids if isinstance(i, (int, str)) and not isinstance(i, bool))

    def without(self, value):
        """The metadata with every value naming them left out (list items, dict entries, records about them)."""
        if isinstance(value, dict):
            return {k: self.without(v) for k, v in value.items() if not self.names(v) and not self.about_them(k, v)}
        if isinstance(value, list):
            return [self.without(v) for v in value if not self.names(v)]
        return value


def _messages_listing(conn, subject: Subject, listed: _Listed) -> list[int]:
    """Messages whose metadata lists one of their addresses (read in full: an erasure is rare, and
    no index can find a text inside a JSON document on both databases). A phone number is found
    as the digits of E.164 (as Telegram and the call records give it), not written with spaces."""
    if not listed.needles:
        return []
    meta = func.lower(cast(message_t.c["metadata"], Text))
    found = conn.execute(select(message_t.c.id, message_t.c["metadata"].label("meta"))
                         .where(or_(*(meta.like(like_pattern(n), escape="\\") for n in listed.needles)))).all()
    # The text matched somewhere (a quoted full text, an order number with the same digits); only
    # a listed address makes it theirs to clear.
    return sorted(r.id for r in found if listed.without(r.meta) != r.meta)


# --- conversations ---------------------------------------------------------------------------------


def export_conversations(ex: Export) -> None:
    s = ex.subject
    ex.conversations = rows_of(ex.conn, select(conversation_t).where(among(conversation_t.c.id, s.conversation_ids))
                               .order_by(conversation_t.c.id))


def erase_conversations(er: Erasure) -> None:
    er.conn.execute(update(conversation_t).where(among(conversation_t.c.id, er.subject.conversation_ids))
                    .values(subject=None, thread_key=None, version=bumped()))


# --- messages --------------------------------------------------------------------------------------


def export_messages(ex: Export) -> None:
    s = ex.subject
    ex.messages = rows_of(ex.conn, select(message_t).where(among(message_t.c.id, s.message_ids)).order_by(message_t.c.id))
    own = set(s.conversation_ids)
    ex.sections["notes"] = [m for m in ex.messages if m["direction"] == Direction.note and m["conversation_id"] in own]
    elsewhere = set(s.messages_elsewhere)
    ex.sections["messages_in_other_conversations"] = [m for m in ex.messages if m["id"] in elsewhere]


def _raw_of(meta) -> str | None:
    return meta[RAW_KEY] if isinstance(meta, dict) and isinstance(meta.get(RAW_KEY), str) else None


def erase_messages(er: Erasure) -> None:
    s, conn = er.subject, er.conn
    # Their messages stay as rows, empty; their raw input (a call's transcript, a mail's source) is a file: it goes.
    for part in chunks(s.message_ids):
        for m in conn.execute(select(message_t.c.id, message_t.c["metadata"].label("meta")).where(message_t.c.id.in_(part))).all():
            raw = _raw_of(m.meta)
            if raw:
                er.files.add(raw)
            meta = {k: v for k, v in (m.meta or {}).items() if k in KEEP_META and isinstance(v, (str, int, float, bool))}
            conn.execute(update(message_t).where(message_t.c.id == m.id).values(
                {"subject": None, "text": ERASED_TEXT, "html": None, "external_id": None, "identity_id": None,
                 "metadata": {**meta, "erased": True}}))
    er.counts["messages"] = len(s.message_ids)
    er.counts["messages_in_other_conversations"] = len(s.messages_elsewhere)

    # Others' messages that listed them: the address leaves the metadata, the raw source (its headers) goes.
    listed = _Listed.of(s)
    for part in chunks(s.messages_naming):
        for m in conn.execute(select(message_t.c.id, message_t.c["metadata"].label("meta")).where(message_t.c.id.in_(part))).all():
            raw = _raw_of(m.meta)
            if raw:
                er.files.add(raw)
            meta = listed.without(m.meta or {})
            meta.pop(RAW_KEY, None)
            conn.execute(update(message_t).where(message_t.c.id == m.id).values({"metadata": meta}))
    er.counts["messages_naming_them"] = len(s.messages_naming)


# --- attachments, read marks, mentions --------------------------------------------------------------


def export_attachments(ex: Export) -> None:
    rows = rows_of(ex.conn, select(attachment_t).where(among(attachment_t.c.message_id, ex.subject.message_ids))
                   .order_by(attachment_t.c.id))
    if ex.blobs is not None and ex.include_files:
        for a in rows:
            a["content_base64"] = ex.file(a["sha256"])
    ex.per_message["attachments"] = rows


def erase_attachments(er: Erasure) -> None:
    where = among(attachment_t.c.message_id, er.subject.message_ids)
    er.files |= set(er.conn.execute(select(attachment_t.c.sha256).where(where)).scalars())
    er.counts["attachments"] = er.conn.execute(attachment_t.delete().where(where)).rowcount


def export_read_marks(ex: Export) -> None:
    ex.per_conversation["read_marks"] = rows_of(ex.conn, select(read_t).where(among(read_t.c.conversation_id, ex.subject.conversation_ids))
                                                .order_by(read_t.c.id))


def export_mentions(ex: Export) -> None:
    ex.per_message["mentions"] = rows_of(ex.conn, select(mention_t).where(among(mention_t.c.message_id, ex.subject.message_ids))
                                         .order_by(mention_t.c.id))


def export_tags(ex: Export) -> None:
    ex.per_conversation["tags"] = rows_of(ex.conn, select(tag_t).where(among(tag_t.c.conversation_id, ex.subject.conversation_ids))
                                          .order_by(tag_t.c.id))


def erase_tags(er: Erasure) -> None:
    """Tags are free text agents typed about the conversation ("chloe-vip"): they go with what the
    customer wrote; the reports' counts by tag lose these conversations."""
    er.counts["conversation_tags"] = er.conn.execute(
        delete(tag_t).where(among(tag_t.c.conversation_id, er.subject.conversation_ids))).rowcount


def keep_agents_data(_: Erasure) -> None:
    """Read marks and mentions say which agent read or was named on a conversation: the agents'
    data, nothing the customer wrote (the mentioning note's text is erased with the messages)."""


# --- files and the search index ---------------------------------------------------------------------


def files_used(conn, shas: list[str]) -> set[str]:
    """Which of these files an attachment or a message's raw input still uses."""
    used = set(conn.execute(select(attachment_t.c.sha256).where(among(attachment_t.c.sha256, shas))).scalars())
    # Exactly the expression of the index search_message_raw_sha256 (migration 0016).
    raw = "json_extract(metadata, '$.raw_sha256')" if is_sqlite(conn) else "(metadata ->> 'raw_sha256')"
    for part in chunks(shas):
        used |= set(conn.execute(text(f"SELECT {raw} FROM message WHERE {raw} IN :shas")
                                 .bindparams(bindparam("shas", expanding=True)), {"shas": part}).scalars())
    return used


def purge_search_index(engine: Engine) -> None:
    """SQLite: the triggers queued the removal (with the old text) in search_pending and took the
    erased messages out of search_message; move the queue into the FTS5 index, index the messages'
    new text, and merge both indexes, so the erased text is in none of them (until a merge, FTS5
    keeps a removed document's words in its older segments). The merge rewrites each index: seconds
    on a large store, during which other writes wait."""
    if not is_sqlite(engine):
        return
    index_search_queue(engine)
    index_all_messages(engine)
    try:
        with engine.connect() as conn:
            present = {row[0] for row in conn.exec_driver_sql(
                f"SELECT name FROM sqlite_master WHERE name IN ('{SEARCH_TEXT}', '{SEARCH_MESSAGE}')")}
        for table in sorted(present):
            with write_tx(engine) as tx:
                tx.exec_driver_sql(f"INSERT INTO {table}({table}) VALUES ('optimize')")
    except (DBAPIError, sqlite3.Error) as exc:  # the erase is committed; the index merges on its own later
        log.warning("could not optimise the search index after an erase: %s", exc)


register_scope(resolve_conversations, stage=WHAT)
register(Conversation, export=export_conversations, erase=erase_conversations)
register(Message, export=export_messages, erase=erase_messages)
register(Attachment, export=export_attachments, erase=erase_attachments)
register(ReadMark, export=export_read_marks, erase=keep_agents_data)
register(Mention, export=export_mentions, erase=keep_agents_data)
register(ConversationTag, export=export_tags, erase=erase_tags)
register_file_use(files_used)
register_after_erase(purge_search_index)
