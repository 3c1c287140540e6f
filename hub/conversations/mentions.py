"""@mentions in internal notes: "@Mia", "@Mia Chen", "@mia.chen" or "@mia.chen@example.com" name an
agent by first name, full name, the local part of their email or their whole email, folded for
case and accents ("@chloe" finds Chloé). The longest name that matches wins ("@Mia Chen" over
"@Mia"); a name two agents share names neither and the note says so. Mentioned agents are stored
with the note and notified (hub/notifications); an @name that finds nobody is shown as not
delivered rather than silently ignored.

Parsing is linear in the note: each "@" looks at most a few words ahead.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import Engine, select

from hub.notifications import notify
from hub.store.db import read_tx, write_tx
from hub.store.models import Agent, Mention, Message, utcnow
from hub.store.sql import insert_ignoring_conflict

agent_t = Agent.__table__
mention_t = Mention.__table__
message_t = Message.__table__

# An "@" after a space, a bracket or the start; never inside an email address or a word.
AT = re.compile(r"(?<![\w.@])@(?=\w)")
# Up to four words after the "@" (a full name has a few), each without spaces.
WORDS = re.compile(r"(\S{1,100})(?:[ \t](\S{1,100}))?(?:[ \t](\S{1,100}))?(?:[ \t](\S{1,100}))?")
TRAILING = ".,;:!?)]}>'\"…"


def fold(value: str) -> str:
    """Case- and accent-folded, spaces collapsed: 'Chloé  MARTIN' -> 'chloe martin'."""
    decomposed = unicodedata.normalize("NFKD", value)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).casefold().split())


@dataclass(frozen=True)
class Hit:
    """One @name in a text: where it is, and the agent it names (None: nobody, or several)."""

    start: int
    end: int
    agent_id: int | None
    why: str = ""  # for an undelivered name: "unknown" | "ambiguous"


def directory(agents) -> dict[str, set[int]]:
    """folded name -> agent ids, for agents given as rows or dicts with id, email and name."""
    keys: dict[str, set[int]] = {}
    for a in agents:
        get = a.get if isinstance(a, dict) else lambda k, a=a: getattr(a, k)
        email, name = (get("email") or "").lower(), get("name") or ""
        names = {email, email.split("@")[0]}
        if name.strip():
            names |= {fold(name), fold(name.split()[0])}
        for key in names - {""}:
            keys.setdefault(key, set()).add(get("id"))
    return keys


def find(text: str, keys: dict[str, set[int]]) -> list[Hit]:
    """Every @name in the text, resolved against `keys` (directory())."""
    hits: list[Hit] = []
    # No name has more words than the longest in the directory: never try longer phrases.
    longest = max((len(k.split()) for k in keys), default=1)
    for at in AT.finditer(text or ""):
        words = WORDS.match(text, at.end())
        if words is None:
            continue
        parts = [w for w in words.groups() if w]
        found = None
        for n in range(min(len(parts), longest), 0, -1):
            phrase = " ".join(parts[:n])
            stripped = phrase.rstrip(TRAILING)
            if not stripped:
                continue
            ids = keys.get(fold(stripped)) or keys.get(stripped.lower())
            if ids:
                end = at.end() + len(stripped)
                found = Hit(at.start(), end, next(iter(ids)) if len(ids) == 1 else None, "" if len(ids) == 1 else "ambiguous")
                break
        if found is None:
            first = parts[0].rstrip(TRAILING)
            if not first:
                continue
            found = Hit(at.start(), at.end() + len(first), None, "unknown")
        if hits and found.start < hits[-1].end:
            continue
        hits.append(found)
    return hits


def _active_agents(conn):
    return conn.execute(select(agent_t.c.id, agent_t.c.email, agent_t.c.name).where(agent_t.c.active.is_(True))).all()


def handles(text: str) -> list[str]:
    """The @names a text uses, as written (without the @), in order, once each."""
    out = []
    for at in AT.finditer(text or ""):
        words = WORDS.match(text, at.end())
        if words:
            out.append(words.group(1).rstrip(TRAILING))
    return list(dict.fromkeys(h for h in out if h))


def resolve(conn, names: list[str]) -> dict[str, int]:
    """@name -> agent id, for the names that name one active agent."""
    keys = directory(_active_agents(conn))
    out = {}
    for name in names:
        ids = keys.get(fold(name))
        if ids and len(ids) == 1:
            out[name] = next(iter(ids))
    return out


def record_in(conn, message_id: int, text: str) -> dict[str, int]:
    """Store who a note mentions and notify them, in the caller's transaction (the note's own, so a
    note is never stored without its mentions); returns @name as written -> agent id."""
    hits = find(text, directory(_active_agents(conn)))
    found = {text[h.start + 1:h.end]: h.agent_id for h in hits if h.agent_id is not None}
    if not found:
        return found
    note = conn.execute(select(message_t.c.conversation_id, message_t.c.author_agent_id, agent_t.c.name, agent_t.c.email)
                        .select_from(message_t.outerjoin(agent_t, agent_t.c.id == message_t.c.author_agent_id))
                        .where(message_t.c.id == message_id)).first()
    author = (note.name or note.email) if note is not None and note.email else "Someone"
    excerpt = " ".join(text.split())[:140]
    for agent_id in set(found.values()):
        insert_ignoring_conflict(conn, mention_t, {"message_id": message_id, "agent_id": agent_id, "created_at": utcnow()})
        if note is not None and agent_id != note.author_agent_id:
            notify(conn, agent_id, "mention", f"{author} mentioned you in conversation #{note.conversation_id}: {excerpt}",
                   dedupe_key=f"mention:{message_id}", conversation_id=note.conversation_id)
    return found


def record(engine: Engine, message_id: int, text: str) -> dict[str, int]:
    """record_in, in a transaction of its own (an existing note; recording twice changes nothing)."""
    with write_tx(engine) as conn:
        return record_in(conn, message_id, text)


def of_messages(conn, message_ids: list[int]) -> dict[int, list[int]]:
    """message id -> ids of the agents it mentions."""
    if not message_ids:
        return {}
    out: dict[int, list[int]] = {}
    for r in conn.execute(select(mention_t.c.message_id, mention_t.c.agent_id).where(mention_t.c.message_id.in_(message_ids))):
        out.setdefault(r.message_id, []).append(r.agent_id)
    return out


def mentioning(engine: Engine, agent_id: int, *, limit: int = 50) -> list[dict]:
    """The notes that mention an agent, newest first."""
    with read_tx(engine) as conn:
        rows = conn.execute(
            select(message_t.c.id, message_t.c.conversation_id, message_t.c.text, message_t.c.created_at)
            .join(mention_t, mention_t.c.message_id == message_t.c.id)
            .where(mention_t.c.agent_id == agent_id)
            .order_by(mention_t.c.id.desc())
            .limit(limit)
        ).all()
    return [{"message_id": r.id, "conversation_id": r.conversation_id, "text": r.text, "created_at": r.created_at} for r in rows]


def people(engine: Engine, prefix: str, *, limit: int = 8) -> list[dict]:
    """Active agents whose name (any of its words) or email starts with the prefix (folded), for the
    note composer's autocomplete; each with the text to insert after the "@"."""
    key = fold(prefix)[:100]
    with read_tx(engine) as conn:
        agents = _active_agents(conn)
    keys = directory(agents)
    out = []
    for a in sorted(agents, key=lambda a: fold(a.name or a.email)):
        name_words = fold(a.name or "").split()
        email = a.email.lower()
        if key and not (any(w.startswith(key) for w in name_words) or fold(a.name or "").startswith(key) or email.startswith(key)):
            continue
        full = " ".join((a.name or "").split())
        # The shortest name that names this agent alone: the full name, else the email's local part.
        insert = full if full and len(keys.get(fold(full), ())) == 1 else email.split("@")[0]
        out.append({"id": a.id, "name": full or email, "email": a.email, "insert": insert})
        if len(out) >= limit:
            break
    return out
