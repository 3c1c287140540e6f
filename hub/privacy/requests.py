"""Privacy requests (issue 9): export everything the hub holds about one customer, and erase a
customer on request while keeping the aggregate figures the reports are made of.

Export: one JSON document — the profile (and the profiles merged into it), identities,
conversations with their messages (text, HTML, metadata), attachments (metadata and the file,
base64), notes, survey answers, SCM facts, drafts, escalations and their events, knowledge-base
feedback, read marks, mentions, outbox rows, link codes, the raw inbound spool rows (and raw mail)
of their messages, articles captured from their conversations, the audit entries about them, and
rows of any other table that points at the customer or one of their conversations.

Erase (anonymise, cannot be undone): identities, link codes and spooled raw input deleted;
message subject/text/HTML/metadata, attachments and raw input files (those no other row uses),
SCM facts and drafts, captured articles removed, and their lines of the log channel's
outbound.jsonl; escalation reasons, survey comments, thread keys and the questions kept with
knowledge-base verdicts cleared;
the profile becomes "erased customer #id". What reports count stays: conversations (channel,
times, status, priority, assignee, intent, SLA times), the survey scores, demand counts, the
messages as rows (direction, channel, times). The inbox search indexes follow the columns (SQLite:
the FTS5 triggers of migration 0003, the queue is flushed and the index optimised; PostgreSQL:
the trigram indexes are on the columns themselves).

No byte is left in the data directory either: on SQLite the database overwrites what it deletes
(PRAGMA secure_delete, set on every connection in hub/store/db.py: the old text of an updated row, freed
pages, the search index's merged segments) and the erasure ends with a checkpoint that empties the
write-ahead log. PostgreSQL keeps old row versions until VACUUM reclaims their space, and its WAL
and backups for as long as they are kept: that is the database administrator's retention policy.

Both are audit-logged (customer.export, customer.erase) with the actor.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sqlite3
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Engine, String, Text, bindparam, cast, delete, or_, select, text, update
from sqlalchemy.exc import DBAPIError

from hub.auth.accounts import audit
from hub.store.blobs import BlobStore
from hub.conversations.versions import bumped
from hub.store.db import SEARCH_TEXT, index_search_queue, is_sqlite, read_tx, write_tx
from hub.conversations.search.message_index import index_all_messages
from hub.conversations.search.message_words import SEARCH_MESSAGE
from hub.contract.errors import Conflict, NotFound
from hub.store.models import Attachment, AuditLog, Conversation, Csat, Customer, Escalation, EscalationEvent, Identity, InboundSpool, KbArticle, KbChunk, KbFeedback, LinkCode, Mention, Message, Outbox, OutboxStatus, ReadMark, ReplyDraft, RoutingAttempt, ScmFact, SQLModel, utcnow
from hub.store.sql import lock_row

log = logging.getLogger(__name__)

customer_t = Customer.__table__
identity_t = Identity.__table__
conversation_t = Conversation.__table__
message_t = Message.__table__
attachment_t = Attachment.__table__
csat_t = Csat.__table__
audit_t = AuditLog.__table__
spool_t = InboundSpool.__table__
link_t = LinkCode.__table__
outbox_t = Outbox.__table__
fact_t = ScmFact.__table__
draft_t = ReplyDraft.__table__
routing_t = RoutingAttempt.__table__
escalation_t = Escalation.__table__
event_t = EscalationEvent.__table__
feedback_t = KbFeedback.__table__
article_t = KbArticle.__table__
chunk_t = KbChunk.__table__
read_t = ReadMark.__table__
mention_t = Mention.__table__

EXPORT_FORMAT = "servicehub-customer-export/1"
# Tables handled by name here; any other table with a customer_id or conversation_id column (added
# by later issues) is exported generically, and on erase cleared of cells naming the customer.
KNOWN = {t.name for t in (customer_t, identity_t, conversation_t, message_t, attachment_t, csat_t, audit_t, spool_t,
                          link_t, outbox_t, fact_t, draft_t, routing_t, escalation_t, event_t, feedback_t, article_t,
                          chunk_t, read_t, mention_t)}
ERASED_TEXT = ""
# Metadata that says nothing about who wrote it, kept for the intent figures.
KEEP_META = ("intent", "confidence")
RAW_KEY = "raw_sha256"  # a message's raw input as a blob (hub.ingest)


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return None  # embeddings (kb_chunk.vector): derived data, not the customer's
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _rows(conn, stmt) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in r._mapping.items()} for r in conn.execute(stmt)]


def _chunks(ids: list[int], size: int = 500):
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


def _in(col, ids: list[int]):
    """col IN ids, in chunks (SQLite's limit on bound parameters)."""
    if not ids:
        return col.in_([])
    return or_(*(col.in_(part) for part in _chunks(ids)))


def _customer_ids(conn, customer_id: int) -> list[int]:
    """The customer and every profile merged into it (tombstones keep the old name)."""
    row = conn.execute(select(customer_t.c.id, customer_t.c.merged_into).where(customer_t.c.id == customer_id)).first()
    if row is None:
        raise NotFound(f"customer {customer_id} does not exist")
    if row.merged_into is not None:
        raise Conflict(f"customer {customer_id} was merged into customer {row.merged_into}: use that customer")
    ids, frontier = [customer_id], [customer_id]
    while frontier:
        frontier = list(conn.execute(select(customer_t.c.id).where(_in(customer_t.c.merged_into, frontier))).scalars())
        ids.extend(i for i in frontier if i not in ids)
    return ids


def _generic_tables(*, exclude=KNOWN):
    for table in SQLModel.metadata.sorted_tables:
        if table.name in exclude:
            continue
        if "customer_id" in table.c or "conversation_id" in table.c:
            yield table


def _generic_where(table, customer_ids, conv_ids):
    parts = []
    if "customer_id" in table.c:
        parts.append(_in(table.c.customer_id, customer_ids))
    if "conversation_id" in table.c:
        parts.append(_in(table.c.conversation_id, conv_ids))
    return or_(*parts)


# --- export -----------------------------------------------------------------------------------------


def export_customer(engine: Engine, customer_id: int, *, blobs: BlobStore | None = None, actor: str = "cli",
                    include_files: bool = True) -> dict[str, Any]:
    """Everything held about one customer, as JSON-ready data; the export is audit-logged."""
    with read_tx(engine) as conn:
        ids = _customer_ids(conn, customer_id)
        customers = _rows(conn, select(customer_t).where(_in(customer_t.c.id, ids)).order_by(customer_t.c.id))
        identities = _rows(conn, select(identity_t).where(_in(identity_t.c.customer_id, ids)).order_by(identity_t.c.id))
        identity_ids = [i["id"] for i in identities]
        convs = _rows(conn, select(conversation_t).where(_in(conversation_t.c.customer_id, ids)).order_by(conversation_t.c.id))
        conv_ids = [c["id"] for c in convs]
        messages = _rows(conn, select(message_t).where(_in(message_t.c.conversation_id, conv_ids)).order_by(message_t.c.id))
        msg_ids = [m["id"] for m in messages]
        attachments = _rows(conn, select(attachment_t).where(_in(attachment_t.c.message_id, msg_ids)).order_by(attachment_t.c.id))
        per_conv = {
            "csat": _rows(conn, select(csat_t).where(_in(csat_t.c.conversation_id, conv_ids)).order_by(csat_t.c.id)),
            "scm_facts": _rows(conn, select(fact_t).where(_in(fact_t.c.conversation_id, conv_ids)).order_by(fact_t.c.id)),
            "reply_drafts": _rows(conn, select(draft_t).where(_in(draft_t.c.conversation_id, conv_ids)).order_by(draft_t.c.id)),
            "escalations": _rows(conn, select(escalation_t).where(_in(escalation_t.c.conversation_id, conv_ids)).order_by(escalation_t.c.id)),
            "kb_feedback": _rows(conn, select(feedback_t).where(_in(feedback_t.c.conversation_id, conv_ids)).order_by(feedback_t.c.id)),
            "read_marks": _rows(conn, select(read_t).where(_in(read_t.c.conversation_id, conv_ids)).order_by(read_t.c.id)),
        }
        esc_ids = [e["id"] for e in per_conv["escalations"]]
        events = _rows(conn, select(event_t).where(_in(event_t.c.escalation_id, esc_ids)).order_by(event_t.c.id))
        mentions = _rows(conn, select(mention_t).where(_in(mention_t.c.message_id, msg_ids)).order_by(mention_t.c.id))
        outbox = _rows(conn, select(outbox_t).where(_in(outbox_t.c.message_id, msg_ids)).order_by(outbox_t.c.id))
        spool = _rows(conn, select(spool_t).where(_in(spool_t.c.message_id, msg_ids)).order_by(spool_t.c.id))
        links = _rows(conn, select(link_t.c.id, link_t.c.customer_id, link_t.c.created_at, link_t.c.expires_at,
                                   link_t.c.used_at, link_t.c.used_by_identity_id)
                      .where(or_(_in(link_t.c.customer_id, ids), _in(link_t.c.used_by_identity_id, identity_ids)))
                      .order_by(link_t.c.id))
        articles = _rows(conn, select(article_t).where(_in(article_t.c.captured_from_message_id, msg_ids)).order_by(article_t.c.id))
        targets = [f"customer:{i}" for i in ids] + [f"conversation:{i}" for i in conv_ids] + [f"escalation:{i}" for i in esc_ids]
        audit_rows = []
        for part in _chunks(targets):
            audit_rows += _rows(conn, select(audit_t).where(audit_t.c.target.in_(part)))
        audit_rows.sort(key=lambda r: r["id"])
        other = {t.name: _rows(conn, select(t).where(_generic_where(t, ids, conv_ids))) for t in _generic_tables()}

    if blobs is not None and include_files:
        for a in attachments:
            a["content_base64"] = _blob64(blobs, a["sha256"])
        for s in spool:
            if s.get("blob_sha256"):
                s["raw_base64"] = _blob64(blobs, s["blob_sha256"])

    by_msg: dict[int, list] = {}
    for a in attachments:
        by_msg.setdefault(a["message_id"], []).append(a)
    mentions_by_msg: dict[int, list] = {}
    for m in mentions:
        mentions_by_msg.setdefault(m["message_id"], []).append(m)
    msgs_by_conv: dict[int, list] = {}
    for m in messages:
        m["attachments"] = by_msg.get(m["id"], [])
        m["mentions"] = mentions_by_msg.get(m["id"], [])
        msgs_by_conv.setdefault(m["conversation_id"], []).append(m)
    events_by_esc: dict[int, list] = {}
    for e in events:
        events_by_esc.setdefault(e["escalation_id"], []).append(e)
    for e in per_conv["escalations"]:
        e["events"] = events_by_esc.get(e["id"], [])
    for c in convs:
        c["messages"] = msgs_by_conv.get(c["id"], [])
        for key, rows in per_conv.items():
            c[key] = [r for r in rows if r["conversation_id"] == c["id"]]

    with write_tx(engine) as conn:
        audit(conn, actor, "customer.export", f"customer:{customer_id}", conversations=len(convs), messages=len(messages))

    return {
        "format": EXPORT_FORMAT,
        "exported_at": utcnow().isoformat(),
        "customer": customers[0] if customers[0]["id"] == customer_id else next(c for c in customers if c["id"] == customer_id),
        "merged_customers": [c for c in customers if c["id"] != customer_id],
        "identities": identities,
        "conversations": convs,
        "notes": [m for m in messages if m["direction"] == "note"],
        "outbox": outbox,
        "inbound_spool": spool,
        "link_codes": links,
        "kb_articles_captured": articles,
        "audit": audit_rows,
        "other": {name: rows for name, rows in other.items() if rows},
    }


def _blob64(blobs: BlobStore, sha: str) -> str | None:
    try:
        return base64.b64encode(blobs.get(sha)).decode("ascii")
    except (OSError, FileNotFoundError, KeyError, ValueError):
        return None  # the file is gone (an earlier erase, a lost disk): the metadata says what it was


# --- erase --------------------------------------------------------------------------------------------


def erase_customer(engine: Engine, blobs: BlobStore | None, customer_id: int, actor: str, *,
                   reason: str | None = None, outbound_log: Path | None = None) -> dict[str, Any]:
    """Anonymise a customer (see the module's docstring); returns what was removed, by kind.
    outbound_log: the log channel's file (Settings.outbound_log), scrubbed of them too."""
    counts: dict[str, int] = {}
    shas: set[str] = set()
    with write_tx(engine) as conn:
        ids = _customer_ids(conn, customer_id)
        lock_row(conn, customer_t, customer_id)
        identities = conn.execute(select(identity_t.c.id, identity_t.c.address, identity_t.c.display_name)
                                  .where(_in(identity_t.c.customer_id, ids))).all()
        identity_ids = [i.id for i in identities]
        names = [n for n in conn.execute(select(customer_t.c.name).where(_in(customer_t.c.id, ids))).scalars() if n]
        needles = sorted({s for i in identities for s in (i.address, i.display_name) if s and len(s) >= 4} |
                         {n for n in names if len(n) >= 4})
        conv_ids = list(conn.execute(select(conversation_t.c.id).where(_in(conversation_t.c.customer_id, ids))).scalars())
        msg_ids = list(conn.execute(select(message_t.c.id).where(_in(message_t.c.conversation_id, conv_ids))).scalars())

        # Files: the attachments' rows go; the blobs themselves after the commit, if unused.
        shas |= set(conn.execute(select(attachment_t.c.sha256).where(_in(attachment_t.c.message_id, msg_ids))).scalars())
        counts["attachments"] = conn.execute(delete(attachment_t).where(_in(attachment_t.c.message_id, msg_ids))).rowcount

        # Captured knowledge: an article drafted from one of their conversations may quote them.
        article_ids = list(conn.execute(select(article_t.c.id).where(_in(article_t.c.captured_from_message_id, msg_ids))).scalars())
        if article_ids:
            conn.execute(delete(feedback_t).where(_in(feedback_t.c.article_id, article_ids)))
            conn.execute(delete(chunk_t).where(_in(chunk_t.c.article_id, article_ids)))
            conn.execute(delete(article_t).where(_in(article_t.c.id, article_ids)))
        counts["kb_articles"] = len(article_ids)

        # Raw input: spool rows of their messages, and any still naming them (rejected mail...).
        spool_where = [_in(spool_t.c.message_id, msg_ids)]
        spool_where += [cast(spool_t.c.payload, Text).contains(n, autoescape=True) for n in needles]
        spooled = conn.execute(select(spool_t.c.id, spool_t.c.blob_sha256).where(or_(*spool_where))).all()
        shas |= {s.blob_sha256 for s in spooled if s.blob_sha256}
        counts["inbound_spool"] = conn.execute(delete(spool_t).where(_in(spool_t.c.id, [s.id for s in spooled]))).rowcount

        # What the hub derived from their words, or was to send them.
        counts["scm_facts"] = conn.execute(delete(fact_t).where(_in(fact_t.c.conversation_id, conv_ids))).rowcount
        counts["reply_drafts"] = conn.execute(delete(draft_t).where(_in(draft_t.c.conversation_id, conv_ids))).rowcount
        # The questions agents' verdicts were about are their words (the verdicts stay, as counts).
        conn.execute(update(feedback_t).where(_in(feedback_t.c.conversation_id, conv_ids))
                     .values(question=None, question_vector=None, vector_model=None))
        conn.execute(delete(routing_t).where(_in(routing_t.c.message_id, msg_ids)))
        outbox_where = [_in(outbox_t.c.message_id, msg_ids)]
        outbox_where += [cast(outbox_t.c.payload, Text).contains(n, autoescape=True) for n in needles]
        outbox_ids = list(conn.execute(select(outbox_t.c.id).where(or_(*outbox_where))).scalars())
        conn.execute(update(outbox_t).where(_in(outbox_t.c.id, outbox_ids),
                                            outbox_t.c.status.in_([OutboxStatus.pending, OutboxStatus.sending]))
                     .values(status=OutboxStatus.dead, last_error="customer erased", locked_until=None))
        conn.execute(update(outbox_t).where(_in(outbox_t.c.id, outbox_ids)).values(payload={}))
        counts["outbox"] = len(outbox_ids)

        # Messages stay as rows (direction, channel, times: the volume report), empty. Their raw
        # input (a call's transcript document, a mail's source) is a file: it goes too.
        kept_meta = conn.execute(select(message_t.c.id, message_t.c["metadata"].label("meta")).where(_in(message_t.c.id, msg_ids))).all()
        shas |= {m.meta[RAW_KEY] for m in kept_meta if isinstance(m.meta, dict) and isinstance(m.meta.get(RAW_KEY), str)}
        for m in kept_meta:
            meta = {k: v for k, v in (m.meta or {}).items() if k in KEEP_META and isinstance(v, (str, int, float, bool))}
            conn.execute(update(message_t).where(message_t.c.id == m.id).values(
                {"subject": None, "text": ERASED_TEXT, "html": None, "external_id": None, "identity_id": None,
                 "metadata": {**meta, "erased": True}}))
        counts["messages"] = len(msg_ids)

        esc_ids = list(conn.execute(select(escalation_t.c.id).where(_in(escalation_t.c.conversation_id, conv_ids))).scalars())
        conn.execute(update(escalation_t).where(_in(escalation_t.c.id, esc_ids)).values(reason="[erased]", last_error=None))
        conn.execute(update(event_t).where(_in(event_t.c.escalation_id, esc_ids)).values(comment=None))
        conn.execute(update(csat_t).where(_in(csat_t.c.conversation_id, conv_ids)).values(comment=None))
        conn.execute(update(conversation_t).where(_in(conversation_t.c.id, conv_ids))
                     .values(subject=None, thread_key=None, version=bumped()))

        # Who they are.
        conn.execute(delete(link_t).where(or_(_in(link_t.c.customer_id, ids), _in(link_t.c.used_by_identity_id, identity_ids))))
        counts["identities"] = conn.execute(delete(identity_t).where(_in(identity_t.c.id, identity_ids))).rowcount
        for cid in ids:
            conn.execute(update(customer_t).where(customer_t.c.id == cid).values(name=f"erased customer #{cid}", updated_at=utcnow()))

        # Tables of later issues: clear the cells that name them.
        for table in _generic_tables():
            where = _generic_where(table, ids, conv_ids)
            for col in table.c:
                if not col.nullable or col.primary_key or col.foreign_keys:
                    continue
                text_col = col if isinstance(col.type, (String, Text)) else cast(col, Text) if isinstance(col.type, JSON) else None
                if text_col is None or not needles:
                    continue
                conn.execute(update(table).where(where, or_(*(text_col.contains(n, autoescape=True) for n in needles)))
                             .values({col.name: None}))

        audit(conn, actor, "customer.erase", f"customer:{customer_id}", reason=(reason or "")[:500],
              merged_profiles=len(ids) - 1, conversations=len(conv_ids), **counts)

    _forget_blobs(engine, blobs, shas)
    if outbound_log is not None:
        counts["outbound_log_lines"] = _scrub_outbound_log(outbound_log, set(conv_ids), needles)
    _purge_search_index(engine)
    _flush_sqlite(engine)
    return {"customer_id": customer_id, "erased": counts, "conversations_kept": len(conv_ids)}


def _raw_sha_expr(conn) -> str:
    # Exactly the expression of the index search_message_raw_sha256 (migration 0016).
    return "json_extract(metadata, '$.raw_sha256')" if is_sqlite(conn) else "(metadata ->> 'raw_sha256')"


def _forget_blobs(engine: Engine, blobs: BlobStore | None, shas: set[str]) -> None:
    """Delete the files no attachment, spool row or message's raw input uses any more (identical
    files are stored once: another customer's message may use the same one)."""
    if blobs is None or not shas:
        return
    wanted = sorted(shas)
    with read_tx(engine) as conn:
        used = set(conn.execute(select(attachment_t.c.sha256).where(attachment_t.c.sha256.in_(wanted))).scalars())
        used |= set(conn.execute(select(spool_t.c.blob_sha256).where(spool_t.c.blob_sha256.in_(wanted))).scalars())
        raw = _raw_sha_expr(conn)
        for part in _chunks(wanted):
            used |= set(conn.execute(text(f"SELECT {raw} FROM message WHERE {raw} IN :shas")
                                     .bindparams(bindparam("shas", expanding=True)), {"shas": part}).scalars())
    for sha in shas - used:
        try:
            blobs.path(sha).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not delete the erased file %s: %s", sha, exc)


def _scrub_outbound_log(path: Path, conv_ids: set[int], needles: list[str]) -> int:
    """The log channel's record of what it would have sent (data_dir/outbound.jsonl): drop the
    lines of the customer's conversations and any naming them; returns how many went. Rewritten
    beside and renamed over, so a crash leaves the old file or the new one. A line the log channel
    appends during the rewrite (another process) can be lost: it only records."""
    try:
        lines = path.read_bytes().splitlines(keepends=True)
    except FileNotFoundError:
        return 0
    lowered = [n.lower() for n in needles]
    kept = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        text_of = line.decode("utf-8", "replace").lower()
        if (isinstance(record, dict) and record.get("conversation_id") in conv_ids) or any(n in text_of for n in lowered):
            continue
        kept.append(line)
    if len(kept) == len(lines):
        return 0
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(b"".join(kept))
    os.replace(tmp, path)
    return len(lines) - len(kept)


def _flush_sqlite(engine: Engine) -> None:
    """SQLite: fold the write-ahead log into the database and empty it. The database overwrites
    what it deletes (PRAGMA secure_delete, hub/store/db.py), but the log still holds the pages as they
    were before the erasure until a checkpoint resets it."""
    if not is_sqlite(engine):
        return
    try:
        with engine.connect() as conn:
            busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        if busy:
            log.warning("the erased customer's old data stays in the SQLite write-ahead log until the readers "
                        "open now finish (the next checkpoint removes it)")
    except (DBAPIError, sqlite3.Error) as exc:
        log.warning("could not checkpoint the SQLite write-ahead log after an erase: %s", exc)


def _purge_search_index(engine: Engine) -> None:
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
