"""Privacy requests: export everything the hub holds about one customer, and erase a customer on
request while keeping the aggregate figures the reports are made of.

What is exported and what an erasure removes or keeps is decided table by table by the capability
that owns the table, in its privacy.py (hub/customers/privacy.py, hub/conversations/privacy.py,
...; the registry is hub/privacy/registry.py, their docstrings say what each keeps and why). In
short: an export is one JSON document with the profile, identities, conversations with their
messages, attachments (base64), notes, survey answers, SCM facts, drafts, escalations, knowledge
base verdicts, outbox and spool rows (with the raw files), link codes, captured articles and the
audit entries about them. An erasure leaves the profile as "erased customer #id" and keeps what
reports count (conversations, messages as rows, scores, demand), and removes everything that says
who they are or what they wrote, their files and their lines of the log channel's outbound.jsonl
included.

No byte is left in the data directory either: on SQLite the database overwrites what it deletes
(PRAGMA secure_delete, set on every connection in hub/store/db.py: the old text of an updated row,
freed pages, the search index's merged segments) and the erasure ends with a checkpoint that empties
the write-ahead log. PostgreSQL keeps old row versions until VACUUM reclaims their space, and its
WAL and backups for as long as they are kept: that is the database administrator's retention policy.

Both are audit-logged (customer.export, customer.erase) with the actor.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from hub.privacy import registry
from hub.store.audit import audit
from hub.store.blobs import BlobStore
from hub.store.db import is_sqlite, read_tx, write_tx
from hub.store.models import utcnow

log = logging.getLogger(__name__)

EXPORT_FORMAT = "servicehub-customer-export/1"


def export_customer(engine: Engine, customer_id: int, *, blobs: BlobStore | None = None, actor: str = "cli",
                    include_files: bool = True) -> dict[str, Any]:
    """Everything held about one customer, as JSON-ready data; the export is audit-logged."""
    with read_tx(engine) as conn:
        subject = registry.resolve(conn, customer_id)
        ex = registry.Export(conn, subject, blobs, include_files)
        for part in registry.ordered_parts(children_first=False):
            part.export(ex)
    document = ex.document()
    with write_tx(engine) as conn:
        audit(conn, actor, "customer.export", f"customer:{customer_id}", conversations=len(ex.conversations),
              messages=len(ex.messages))
    return {"format": EXPORT_FORMAT, "exported_at": utcnow().isoformat(), **document}


def erase_customer(engine: Engine, blobs: BlobStore | None, customer_id: int, actor: str, *,
                   reason: str | None = None, outbound_log: Path | None = None) -> dict[str, Any]:
    """Anonymise a customer (see the module's docstring); returns what was removed, by kind.
    outbound_log: the log channel's file (Settings.outbound_log), scrubbed of them too."""
    with write_tx(engine) as conn:
        subject = registry.resolve(conn, customer_id, for_erasure=True)
        er = registry.Erasure(conn, subject)
        # Children first: a row is deleted or lets go of another before that one is deleted.
        for part in registry.ordered_parts(children_first=True):
            part.erase(er)
        audit(conn, actor, "customer.erase", f"customer:{customer_id}", reason=(reason or "")[:500],
              merged_profiles=len(subject.customer_ids) - 1, conversations=len(subject.conversation_ids), **er.counts)

    counts = er.counts
    _forget_files(engine, blobs, er.files)
    if outbound_log is not None:
        counts["outbound_log_lines"] = _scrub_outbound_log(outbound_log, set(subject.conversation_ids), subject.needles)
    registry.after_erase(engine)
    _flush_sqlite(engine)
    return {"customer_id": customer_id, "erased": counts, "conversations_kept": len(subject.conversation_ids)}


def _forget_files(engine: Engine, blobs: BlobStore | None, shas: set[str]) -> None:
    """Delete the files no table uses any more (identical files are stored once: another
    customer's message may use the same one)."""
    if blobs is None or not shas:
        return
    with read_tx(engine) as conn:
        used = registry.files_in_use(conn, sorted(shas))
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
