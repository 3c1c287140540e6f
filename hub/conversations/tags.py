"""Tags on conversations: short labels agents add and remove ("refund", "vip"), that lists filter
by (tag=) and reports count. A name is folded before it is stored or looked for (spaces collapsed,
case folded, NFC), so "VIP" and " vip " are one tag; control characters and over-long names are
refused with a message, never cut silently.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, exists, func, select

from hub.contract.errors import RejectedInput
from hub.contract.i18n import N_
from hub.contract.principal import Principal
from hub.conversations.queries import conversation_t, require_conversation
from hub.store.audit import audit
from hub.store.db import read_tx, write_tx
from hub.store.models import ConversationTag, utcnow
from hub.store.search_text import refuse_control_characters
from hub.store.sql import insert_ignoring_conflict

tag_t = ConversationTag.__table__

MAX_TAG = 50
MAX_TAGS = 20  # on one conversation: a label set, not a place for notes


def tag_name(raw: str) -> str:
    """The folded name of a tag; RejectedInput when empty or longer than MAX_TAG characters,
    UnreadableInput for control characters."""
    if not isinstance(raw, str):
        raise RejectedInput(N_("a tag is a short text"))
    refuse_control_characters(raw[: MAX_TAG * 4], "tag")
    name = " ".join(unicodedata.normalize("NFC", raw[: MAX_TAG * 4]).split()).casefold()
    if not name:
        raise RejectedInput(N_("a tag needs a name"))
    if len(name) > MAX_TAG or len(raw) > MAX_TAG * 4:
        raise RejectedInput(N_("a tag has at most %(num)s characters"), params={"num": MAX_TAG})
    return name


def tags_of(conn, conversation_ids: list[int]) -> dict[int, list[str]]:
    """The tags of these conversations, each list in name order."""
    out: dict[int, list[str]] = {}
    if conversation_ids:
        rows = conn.execute(
            select(tag_t.c.conversation_id, tag_t.c.tag).where(tag_t.c.conversation_id.in_(conversation_ids)).order_by(tag_t.c.tag)
        )
        for r in rows:
            out.setdefault(r.conversation_id, []).append(r.tag)
    return out


def conversation_tags(engine: Engine, conversation_id: int) -> list[str]:
    with read_tx(engine) as conn:
        require_conversation(conn, conversation_id)
        return tags_of(conn, [conversation_id]).get(conversation_id, [])


def add_tag_in(conn, conversation_id: int, raw: str, actor: Principal) -> bool:
    """Tag the conversation on the caller's transaction; whether the tag is new on it."""
    name = tag_name(raw)
    require_conversation(conn, conversation_id)
    count = conn.execute(select(func.count()).select_from(tag_t).where(tag_t.c.conversation_id == conversation_id)).scalar()
    if count >= MAX_TAGS:
        raise RejectedInput(N_("a conversation has at most %(num)s tags; remove one first"), params={"num": MAX_TAGS})
    added = insert_ignoring_conflict(conn, tag_t, {"conversation_id": conversation_id, "tag": name, "created_at": utcnow()})
    if added is not None:
        audit(conn, actor.actor, "conversation.tag", f"conversation:{conversation_id}", tag=name)
    return added is not None


def add_tag(engine: Engine, conversation_id: int, raw: str, actor: Principal) -> list[str]:
    """Tag the conversation (once: a tag it has already is no change); its tags now."""
    with write_tx(engine) as conn:
        add_tag_in(conn, conversation_id, raw, actor)
        return tags_of(conn, [conversation_id]).get(conversation_id, [])


def remove_tag(engine: Engine, conversation_id: int, raw: str, actor: Principal) -> list[str]:
    """Take the tag off (a tag it does not have is no change); its tags now."""
    name = tag_name(raw)
    with write_tx(engine) as conn:
        require_conversation(conn, conversation_id)
        gone = conn.execute(delete(tag_t).where(tag_t.c.conversation_id == conversation_id, tag_t.c.tag == name)).rowcount
        if gone:
            audit(conn, actor.actor, "conversation.untag", f"conversation:{conversation_id}", tag=name)
        return tags_of(conn, [conversation_id]).get(conversation_id, [])


def known_tags(engine: Engine, *, limit: int = 200) -> list[dict[str, Any]]:
    """The tags in use, most used first: what the tag editor suggests."""
    with read_tx(engine) as conn:
        rows = conn.execute(
            select(tag_t.c.tag, func.count().label("n")).group_by(tag_t.c.tag).order_by(func.count().desc(), tag_t.c.tag).limit(limit)
        ).all()
    return [{"tag": r.tag, "conversations": r.n} for r in rows]


def tagged(name: str):
    """The condition "the conversation has this tag", checked on each conversation a listing walks
    in its own order (one probe of the unique index (conversation, tag)): a page of a tag on 5%
    of 100,000 conversations in 1.5 ms, where collecting the tag's conversations first and sorting
    them took 18-40 ms. A tag on very few conversations walks further (the whole activity index at
    worst: tens of ms)."""
    return exists().where(tag_t.c.conversation_id == conversation_t.c.id, tag_t.c.tag == name)


def count_by_tag(engine: Engine, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Reports: how many conversations created in [start, end) carry each tag, most first."""
    with read_tx(engine) as conn:
        rows = conn.execute(
            select(tag_t.c.tag, func.count().label("n"))
            .join(conversation_t, conversation_t.c.id == tag_t.c.conversation_id)
            .where(conversation_t.c.created_at >= start, conversation_t.c.created_at < end)
            .group_by(tag_t.c.tag)
            .order_by(func.count().desc(), tag_t.c.tag)
        ).all()
    return [{"tag": r.tag, "conversations": r.n} for r in rows]
