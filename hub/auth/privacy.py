"""Privacy parts of the audit log: the entries about the customer, their conversations and
escalations (merges, link codes, exports, erasures). Exported; kept on erasure: they record who did
what to the data, the erasure itself included, and name the customer by id only.
"""

from __future__ import annotations

from sqlalchemy import select

from hub.privacy import Export, chunks, keep, register, rows_of
from hub.store.models import AuditLog

audit_t = AuditLog.__table__


def export_audit(ex: Export) -> None:
    rows = []
    for part in chunks(ex.subject.audit_targets):
        rows += rows_of(ex.conn, select(audit_t).where(audit_t.c.target.in_(part)))
    ex.sections["audit"] = sorted(rows, key=lambda r: r["id"])


register(AuditLog, export=export_audit, erase=keep)
