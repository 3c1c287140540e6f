"""The audit log: who did what to which record, in the transaction that did it."""

from __future__ import annotations

from hub.store.models import AuditLog, utcnow

audit_t = AuditLog.__table__


def audit(conn, actor: str, action: str, target: str, **detail) -> None:
    """One entry: `actor` as Principal.actor ("agent:3", "token:1") or a name ("cli", "rule:sla_breach"),
    `target` as "kind:id", `detail` small JSON."""
    conn.execute(audit_t.insert().values(actor=actor, action=action, target=target, detail=detail, created_at=utcnow()))
