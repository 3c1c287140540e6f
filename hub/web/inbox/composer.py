"""What the conversation's composer offers, as plain functions the page handlers call: where a
reply goes by default (the customer's most recent channel that can receive it), the canned
responses ready to insert at the cursor, and a knowledge-base passage as clean text a channel
can show; and the composer's reply part alone (recipient_fragment), which the page fetches again
when the customer's addresses change."""

from __future__ import annotations

import asyncio
import re

from aiohttp import web
from sqlalchemy import Engine, select

from hub import conversations
from hub.conversations import macros, replies
from hub.store.db import read_tx
from hub.store.models import Direction, Identity, KbChunk, Message
from hub.web.inbox.common import CSRF_FIELD, agent, int_param, page, render, said
from hub.web.keys import ENGINE

identity_t = Identity.__table__
message_t = Message.__table__
chunk_t = KbChunk.__table__


def _recent_channels(engine: Engine, customer_id: int) -> list[str]:
    """The channels the customer wrote on, the most recent first, then those of their identities
    (an address an agent added, a Telegram chat linked by a code)."""
    with read_tx(engine) as conn:
        written = conn.execute(
            select(message_t.c.channel)
            .join(identity_t, identity_t.c.id == message_t.c.identity_id)
            .where(identity_t.c.customer_id == customer_id, message_t.c.direction == Direction.inbound)
            .order_by(message_t.c.id.desc()).limit(200)
        ).scalars().all()
        kinds = conn.execute(
            select(identity_t.c.kind).where(identity_t.c.customer_id == customer_id).order_by(identity_t.c.id.desc())
        ).scalars().all()
    out = []
    for channel in [*written, *kinds]:
        channel = "email" if channel in replies.ANSWERED_BY_EMAIL else channel
        if channel not in out:
            out.append(channel)
    return out


def reply_options(engine: Engine, conversation_id: int, customer_id: int) -> dict:
    """Where the reply can go: {"channel": the default, "recipient": where it goes by default,
    "choices": [recipient of each channel that can receive], "problem": why nothing can}. The
    default is the customer's most recent channel that can receive a reply: a phone call from a
    customer without an email address does not default to email."""
    choices = []
    for channel in _recent_channels(engine, customer_id):
        r = replies.reply_recipient(engine, conversation_id, channel, said=said)
        if not r["error"]:
            choices.append(r)
    default = replies.reply_recipient(engine, conversation_id, said=said)  # the conversation's own way back
    if not choices and not default["error"]:
        choices.append(default)
    first = choices[0] if choices else None
    return {"channel": first["channel"] if first else None, "recipient": first, "choices": choices,
            "name": default["name"], "problem": None if first else default["error"]}


def _reply_part(engine: Engine, conversation_id: int) -> dict:
    conv = conversations.get_conversation(engine, conversation_id)  # a guessed id: NotFound, the 404 page
    return {"conv": conv, "reply": reply_options(engine, conversation_id, conv["customer"]["id"]), "draft": ""}


@page
async def recipient_fragment(request: web.Request) -> web.Response:
    """The reply form (or why no reply can reach the customer) alone: after an agent adds an email
    address or a phone in the customer panel, whom the reply goes to changes without reopening."""
    who = agent(request)
    cid = int_param(request.match_info["id"], "conversation id")
    ctx = await asyncio.to_thread(_reply_part, request.app[ENGINE], cid)
    return render(request, "_reply.html", {**ctx, "who": who, "csrf": who.csrf_token, "csrf_field": CSRF_FIELD})


def macro_choices(engine: Engine, conv: dict, agent_name: str, own_name: str) -> list[dict]:
    """Every canned response rendered for this conversation: what `/` in the composer offers."""
    values = macros.values_for(conv, agent_name, own_name)
    return [{"id": m["id"], "name": m["name"], "body": macros.render(m["body"], values)} for m in macros.list_macros(engine)]


def passages(engine: Engine, passage_ids: list[str]) -> dict[str, str]:
    """The whole text of each passage, as plain text (see plain_text)."""
    ids = [p for p in passage_ids if p][:20]
    if not ids:
        return {}
    with read_tx(engine) as conn:
        rows = conn.execute(select(chunk_t.c.passage_id, chunk_t.c.text).where(chunk_t.c.passage_id.in_(ids))).all()
    return {r.passage_id: plain_text(r.text) for r in rows}


_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*)$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^(\s*)(\d{1,9})[.)]\s+(.*)$")
_QUOTE = re.compile(r"^\s*>\s?")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
# Every repeated part is bounded: a line of thousands of "[" or "**" is scanned in linear time.
_IMAGE = re.compile(r"!\[([^\]\n]{0,300})\]\(([^)\s]{0,2000})[^)\n]{0,300}\)")
_LINK = re.compile(r"\[([^\]\n]{1,300})\]\(([^)\s]{1,2000})[^)\n]{0,300}\)")
_STRONG = re.compile(r"(\*\*|__)(?=\S)([^\n]{0,300}?\S)\1")
_EMPHASIS = re.compile(r"(?<![\w*])([*_])(?=\S)([^*_\n]{0,300}?\S)\1(?![\w*])")
_CODE = re.compile(r"`([^`\n]{1,300})`")


def _inline(text: str) -> str:
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(lambda m: m.group(1) if m.group(1) == m.group(2) else f"{m.group(1)} ({m.group(2)})", text)
    text = _CODE.sub(r"\1", text)
    text = _STRONG.sub(r"\2", text)
    return _EMPHASIS.sub(r"\2", text)


def plain_text(markdown: str) -> str:
    """Markdown as text every channel shows as it is meant (an SMS-like Telegram message, a plain
    email): headings as lines of their own, lists with bullets, links with their address, no
    markup characters; a paragraph's wrapped lines joined. Line by line, so linear in the text."""
    blocks: list[str] = []
    current: list[str] = []

    def flush():
        if current:
            blocks.append(" ".join(current))
            current.clear()

    fenced = False
    for raw in markdown.replace("\r\n", "\n").split("\n"):
        line = raw.rstrip()
        if line.lstrip().startswith("```"):
            flush()
            fenced = not fenced
            continue
        if fenced:
            blocks.append(line)
            continue
        if not line.strip() or _RULE.match(line):
            flush()
            if blocks and blocks[-1] != "":
                blocks.append("")
            continue
        line = _QUOTE.sub("", line)
        if m := _HEADING.match(line):
            flush()
            title = m.group(1).rstrip()
            closing = title.rstrip("#")  # "## Title ##": the closing run goes when a space precedes it
            if closing != title and (not closing or closing[-1] in " \t"):
                title = closing.rstrip()
            blocks.append(_inline(title))
            continue
        if m := _BULLET.match(line):
            flush()
            current.append(("  " if m.group(1) else "") + "• " + _inline(m.group(2)))
            continue
        if m := _NUMBERED.match(line):
            flush()
            current.append(f"{m.group(1) and '  '}{m.group(2)}. {_inline(m.group(3))}")
            continue
        current.append(_inline(line.strip()))
    flush()
    return "\n".join(blocks).strip()
