"""Privacy parts of the SCM tables: what the back end said about the customer's orders and stock
questions, replies composed for them but not sent, the routing worker's leases on their messages,
and escalations of their conversations to the back office with the progress reported.

Export: facts, drafts and escalations (each with its events) by conversation; facts and drafts
on their messages in others' conversations apart. Erase: facts and drafts are deleted (derived
from their words, or meant for them), on their conversations and on their messages in others';
leases on their messages go; escalations stay as rows (status, times,
target: the back office's figures) with reason, last error and the events' comments cleared.
Demand counts are per product and day, about nobody: they stay and need no part.
"""

from __future__ import annotations

from sqlalchemy import delete, or_, select, update

from hub.privacy import DERIVED, Erasure, Export, Subject, among, nothing_to_export, register, register_scope, rows_of
from hub.store.models import Escalation, EscalationEvent, ReplyDraft, RoutingAttempt, ScmFact

fact_t = ScmFact.__table__
draft_t = ReplyDraft.__table__
routing_t = RoutingAttempt.__table__
escalation_t = Escalation.__table__
event_t = EscalationEvent.__table__


def _escalations(conn, subject: Subject) -> list[int]:
    return list(conn.execute(select(escalation_t.c.id).where(among(escalation_t.c.conversation_id, subject.conversation_ids))
                             .order_by(escalation_t.c.id)).scalars())


def resolve_escalations(conn, subject: Subject) -> None:
    """The audit log names escalations of their conversations too."""
    subject.audit_targets += [f"escalation:{i}" for i in _escalations(conn, subject)]


def _theirs(table, subject: Subject):
    return or_(among(table.c.conversation_id, subject.conversation_ids), among(table.c.message_id, subject.message_ids))


def _by_conversation(ex: Export, key: str, table) -> None:
    """Rows on their conversations go with each conversation; rows on their messages in other
    customers' conversations into the export's "other" section."""
    rows = rows_of(ex.conn, select(table).where(_theirs(table, ex.subject)).order_by(table.c.id))
    own = set(ex.subject.conversation_ids)
    ex.per_conversation[key] = [r for r in rows if r["conversation_id"] in own]
    ex.other[table.name] = [r for r in rows if r["conversation_id"] not in own]


def export_facts(ex: Export) -> None:
    _by_conversation(ex, "scm_facts", fact_t)


def erase_facts(er: Erasure) -> None:
    er.counts["scm_facts"] = er.conn.execute(delete(fact_t).where(_theirs(fact_t, er.subject))).rowcount


def export_drafts(ex: Export) -> None:
    _by_conversation(ex, "reply_drafts", draft_t)


def erase_drafts(er: Erasure) -> None:
    er.counts["reply_drafts"] = er.conn.execute(delete(draft_t).where(_theirs(draft_t, er.subject))).rowcount


def erase_leases(er: Erasure) -> None:
    er.conn.execute(delete(routing_t).where(among(routing_t.c.message_id, er.subject.message_ids)))


def export_escalations(ex: Export) -> None:
    escalations = rows_of(ex.conn, select(escalation_t).where(among(escalation_t.c.conversation_id, ex.subject.conversation_ids))
                          .order_by(escalation_t.c.id))
    events = rows_of(ex.conn, select(event_t).where(among(event_t.c.escalation_id, [e["id"] for e in escalations])).order_by(event_t.c.id))
    by_escalation: dict[int, list] = {}
    for e in events:
        by_escalation.setdefault(e["escalation_id"], []).append(e)
    for e in escalations:
        e["events"] = by_escalation.get(e["id"], [])
    ex.per_conversation["escalations"] = escalations


def erase_escalations(er: Erasure) -> None:
    er.conn.execute(update(escalation_t).where(among(escalation_t.c.id, _escalations(er.conn, er.subject)))
                    .values(reason="[erased]", last_error=None))


def erase_events(er: Erasure) -> None:
    er.conn.execute(update(event_t).where(among(event_t.c.escalation_id, _escalations(er.conn, er.subject))).values(comment=None))


register_scope(resolve_escalations, stage=DERIVED)
register(ScmFact, export=export_facts, erase=erase_facts)
register(ReplyDraft, export=export_drafts, erase=erase_drafts)
register(RoutingAttempt, export=nothing_to_export, erase=erase_leases)  # a worker's lease, about no one
register(Escalation, export=export_escalations, erase=erase_escalations)
register(EscalationEvent, export=nothing_to_export, erase=erase_events)  # exported within their escalation
