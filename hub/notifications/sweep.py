"""Notifications that follow from what other capabilities record: an assignment (the audit log's
conversation.update with an assignee, or the automatic conversation.assign) and an SLA warning
(sla_event) on a conversation someone holds.

Reading their durable records, rather than hooking every door an assignment comes through (the
page, the API, bulk actions, the SLA worker's automatic assignment), means none is missed and
none of those capabilities needs to know about notifications. Each pass starts after the ids the
last pass saw; notify()'s dedupe key makes two processes sweeping the same rows tell once.

The watermarks are kept in the store (hub/store/state.py), saved after a batch commits: an
assignment or a warning recorded while no sweeper ran (a restart, a deploy, the API used from a
CLI process) is told on the next start. A crash between a batch's commit and its save sweeps that
batch again, which the dedupe key makes harmless. The first start ever begins at the store's
present: a new install is not flooded with its history.

After a long stop the backlog is swept in batches, each its own transaction, and what is no longer
true is not told: an assignment since given to someone else (or taken back), an SLA warning on a
conversation since answered (first response) or resolved, or whose due time has since moved. The
same test runs on every pass; with a sweeper running it only drops what changed within a second.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, select

from hub.notifications.store import notify
from hub.store.db import read_tx, write_tx
from hub.store.models import AuditLog, Conversation, SlaEvent
from hub.store.state import load_state, save_state

log = logging.getLogger(__name__)

audit_t = AuditLog.__table__
event_t = SlaEvent.__table__
conversation_t = Conversation.__table__

ASSIGN_ACTIONS = ("conversation.update", "conversation.assign")
LABEL = {"first_response": "first response", "resolution": "resolution"}
STATE = ("notifications", "sweep")
RUNNING = ("open", "pending")  # the statuses under which SLA timers run (hub/sla/timers.py)
BATCHES_PER_PASS = 4  # a long backlog takes several passes (each well under a second), so the loop keeps announcing meanwhile
# Marks that moved only over rows of no interest (other audit actions, breaches) are saved this
# seldom: a write each second would contend with ingest on SQLite, and re-reading them is cheap.
IDLE_SAVE_SECONDS = 30.0


@dataclass
class Watermarks:
    audit: int | None = None
    sla: int | None = None
    saved_at: float | None = None  # time.monotonic() of this process's last save
    saved_as: tuple[int, int] | None = None  # (audit, sla) as this process last saved or loaded them


def _present(engine: Engine) -> Watermarks:
    with read_tx(engine) as conn:
        return Watermarks(conn.execute(select(func.max(audit_t.c.id))).scalar() or 0,
                          conn.execute(select(func.max(event_t.c.id))).scalar() or 0)


def _saved(engine: Engine) -> Watermarks | None:
    value = load_state(engine, *STATE)
    if not isinstance(value, dict):
        return None
    audit, sla = value.get("audit"), value.get("sla")
    if not (isinstance(audit, int) and isinstance(sla, int)):
        return None  # a damaged value is a first start: from now, rather than from the beginning
    return Watermarks(audit, sla)


def start(engine: Engine) -> Watermarks:
    """Where this process's sweep begins: after what the last sweep (of any process) saved, or,
    the first time ever, at the store's present (saved at once, so what follows is told)."""
    marks = _saved(engine)
    if marks is None:
        marks = _present(engine)
        save_state(engine, *STATE, {"audit": marks.audit, "sla": marks.sla})
    marks.saved_at, marks.saved_as = time.monotonic(), (marks.audit, marks.sla)
    return marks


def _save(engine: Engine, marks: Watermarks) -> None:
    # Two sweepers each save where they got to, keeping the higher marks they read. Two saves that
    # race may still move the marks back; the next pass then sweeps those rows again, which the
    # dedupe key makes harmless (nobody is told twice).
    marks.saved_at, marks.saved_as = time.monotonic(), (marks.audit, marks.sla)
    saved = _saved(engine)
    if saved is not None and saved.audit >= marks.audit and saved.sla >= marks.sla:
        return
    save_state(engine, *STATE, {"audit": max(marks.audit, saved.audit if saved else 0),
                                "sla": max(marks.sla, saved.sla if saved else 0)})


def _utc(at: datetime | None) -> datetime | None:
    # SQLite gives naive datetimes back; every stored time is UTC.
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def _conversations(conn: Connection, ids: set[int]) -> dict[int, object]:
    if not ids:
        return {}
    rows = conn.execute(select(conversation_t.c.id, conversation_t.c.assignee_id, conversation_t.c.status,
                               conversation_t.c.first_response_at, conversation_t.c.resolved_at,
                               conversation_t.c.first_response_due_at, conversation_t.c.resolution_due_at)
                        .where(conversation_t.c.id.in_(sorted(ids)))).all()
    return {r.id: r for r in rows}


def _assignment_batch(conn: Connection, marks: Watermarks, batch: int) -> tuple[int, int, int]:
    rows = conn.execute(select(audit_t.c.id, audit_t.c.actor, audit_t.c.action, audit_t.c.target, audit_t.c.detail)
                        .where(audit_t.c.id > marks.audit, audit_t.c.action.in_(ASSIGN_ACTIONS))
                        .order_by(audit_t.c.id).limit(batch)).all()
    wanted = []
    for r in rows:
        detail = r.detail if isinstance(r.detail, dict) else {}
        assignee = detail.get("assignee_id")
        if not isinstance(assignee, int) or not r.target.startswith("conversation:"):
            continue
        if r.actor == f"agent:{assignee}":
            continue  # "assign to me" is no news to me
        try:
            cid = int(r.target.partition(":")[2])
        except ValueError:
            continue
        wanted.append((r.id, cid, assignee, detail))
    now = _conversations(conn, {cid for _, cid, _, _ in wanted})
    told = stale = 0
    for audit_id, cid, assignee, detail in wanted:
        conv = now.get(cid)
        if conv is None or conv.assignee_id != assignee:
            stale += 1  # given to someone else (or nobody) since: telling would send them to the wrong work
            continue
        why = f" ({detail['reason']})" if isinstance(detail.get("reason"), str) else ""
        told += notify(conn, assignee, "assignment", f"Conversation #{cid} was assigned to you{why}",
                       dedupe_key=f"audit:{audit_id}", conversation_id=cid) is not None
    if rows:
        marks.audit = rows[-1].id
    else:
        marks.audit = max(marks.audit, conn.execute(select(func.max(audit_t.c.id))).scalar() or 0)
    return told, stale, len(rows)


def _warning_stale(e, conv) -> bool:
    if conv is None or conv.assignee_id is None or conv.status not in RUNNING:
        return True
    if e.timer == "first_response":
        done, due = conv.first_response_at, conv.first_response_due_at
    else:
        done, due = conv.resolved_at, conv.resolution_due_at
    return done is not None or _utc(due) != _utc(e.due_at)


def _warning_batch(conn: Connection, marks: Watermarks, batch: int) -> tuple[int, int, int]:
    events = conn.execute(select(event_t.c.id, event_t.c.conversation_id, event_t.c.timer, event_t.c.due_at)
                          .where(event_t.c.id > marks.sla, event_t.c.stage == "warning")
                          .order_by(event_t.c.id).limit(batch)).all()
    now = _conversations(conn, {e.conversation_id for e in events})
    told = stale = 0
    for e in events:
        conv = now.get(e.conversation_id)
        if _warning_stale(e, conv):
            stale += conv is not None and conv.assignee_id is not None
            continue
        due = _utc(e.due_at).strftime("%Y-%m-%d %H:%M UTC")
        told += notify(conn, conv.assignee_id, "sla_warning",
                       f"SLA warning on conversation #{e.conversation_id}: {LABEL.get(e.timer, e.timer)} due {due}",
                       dedupe_key=f"sla:{e.id}", conversation_id=e.conversation_id) is not None
    if events:
        marks.sla = events[-1].id
    else:
        marks.sla = max(marks.sla, conn.execute(select(func.max(event_t.c.id))).scalar() or 0)
    return told, stale, len(events)


def sweep(engine: Engine, marks: Watermarks, *, batch: int = 500, max_batches: int = BATCHES_PER_PASS) -> int:
    """One pass: notifications for the assignments and SLA warnings recorded after the watermarks,
    at most `batch` of each per transaction and `max_batches` transactions (the rest is the next
    pass's); the watermarks move on, saved after each commit that went over assignments or warnings
    (else every IDLE_SAVE_SECONDS). Returns how many agents were told something new."""
    told = stale = 0
    for _ in range(max(1, max_batches)):
        with write_tx(engine) as conn:
            a_told, a_stale, a_rows = _assignment_batch(conn, marks, batch)
            w_told, w_stale, w_rows = _warning_batch(conn, marks, batch)
        told += a_told + w_told
        stale += a_stale + w_stale
        idle_for = time.monotonic() - (marks.saved_at or 0.0)
        if (marks.audit, marks.sla) != marks.saved_as and (a_rows or w_rows or idle_for >= IDLE_SAVE_SECONDS):
            _save(engine, marks)
        if a_rows < batch and w_rows < batch:
            break
    if stale:
        log.info("notifications sweep: %d told, %d no longer true skipped", told, stale)
    return told
