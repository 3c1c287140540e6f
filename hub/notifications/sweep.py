"""Notifications that follow from what other capabilities record: an assignment (the audit log's
conversation.update with an assignee, or the automatic conversation.assign) and an SLA warning
(sla_event) on a conversation someone holds.

Reading their durable records, rather than hooking every door an assignment comes through (the
page, the API, bulk actions, the SLA worker's automatic assignment), means none is missed and
none of those capabilities needs to know about notifications. Each pass starts after the ids the
last pass saw; notify()'s dedupe key makes two processes sweeping the same rows tell once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from hub.notifications.store import notify
from hub.store.db import read_tx, write_tx
from hub.store.models import AuditLog, Conversation, SlaEvent

audit_t = AuditLog.__table__
event_t = SlaEvent.__table__
conversation_t = Conversation.__table__

ASSIGN_ACTIONS = ("conversation.update", "conversation.assign")
LABEL = {"first_response": "first response", "resolution": "resolution"}


@dataclass
class Watermarks:
    audit: int | None = None
    sla: int | None = None


def start(engine: Engine) -> Watermarks:
    """Watermarks at the store's present: a process that starts tells what happens from now on."""
    with read_tx(engine) as conn:
        return Watermarks(conn.execute(select(func.max(audit_t.c.id))).scalar() or 0,
                          conn.execute(select(func.max(event_t.c.id))).scalar() or 0)


def sweep(engine: Engine, marks: Watermarks, *, batch: int = 500) -> int:
    """One pass: notifications for the assignments and SLA warnings recorded after the watermarks
    (which move on); returns how many agents were told something new."""
    told = 0
    with write_tx(engine) as conn:
        rows = conn.execute(select(audit_t.c.id, audit_t.c.actor, audit_t.c.action, audit_t.c.target, audit_t.c.detail)
                            .where(audit_t.c.id > marks.audit, audit_t.c.action.in_(ASSIGN_ACTIONS))
                            .order_by(audit_t.c.id).limit(batch)).all()
        for r in rows:
            detail = r.detail if isinstance(r.detail, dict) else {}
            assignee = detail.get("assignee_id")
            if not isinstance(assignee, int) or not r.target.startswith("conversation:"):
                continue
            if r.actor == f"agent:{assignee}":
                continue  # "assign to me" is no news to me
            cid = int(r.target.partition(":")[2])
            why = f" ({detail['reason']})" if isinstance(detail.get("reason"), str) else ""
            told += notify(conn, assignee, "assignment", f"Conversation #{cid} was assigned to you{why}",
                           dedupe_key=f"audit:{r.id}", conversation_id=cid) is not None
        if rows:
            marks.audit = rows[-1].id
        else:
            marks.audit = max(marks.audit, conn.execute(select(func.max(audit_t.c.id))).scalar() or 0)
        events = conn.execute(select(event_t.c.id, event_t.c.conversation_id, event_t.c.timer, event_t.c.due_at,
                                     conversation_t.c.assignee_id)
                              .join(conversation_t, conversation_t.c.id == event_t.c.conversation_id)
                              .where(event_t.c.id > marks.sla, event_t.c.stage == "warning")
                              .order_by(event_t.c.id).limit(batch)).all()
        for e in events:
            if e.assignee_id is None:
                continue
            due = e.due_at.strftime("%Y-%m-%d %H:%M UTC")
            told += notify(conn, e.assignee_id, "sla_warning",
                           f"SLA warning on conversation #{e.conversation_id}: {LABEL.get(e.timer, e.timer)} due {due}",
                           dedupe_key=f"sla:{e.id}", conversation_id=e.conversation_id) is not None
        if events:
            marks.sla = events[-1].id
        else:
            marks.sla = max(marks.sla, conn.execute(select(func.max(event_t.c.id))).scalar() or 0)
    return told
