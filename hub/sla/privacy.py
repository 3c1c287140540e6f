"""Privacy parts of the SLA tables: the SLA worker's clock per conversation and the warnings and
breaches it acted on. They hold ids, times and timer names, nothing the customer wrote: exported
(they are about the customer's conversations) and kept on erasure, as the figures the SLA reports
count.
"""

from __future__ import annotations

from sqlalchemy import select

from hub.privacy import Export, among, keep, register, rows_of
from hub.store.models import SlaClock, SlaEvent


def _exporter(table):
    def export(ex: Export) -> None:
        ex.other[table.name] = rows_of(ex.conn, select(table).where(among(table.c.conversation_id, ex.subject.conversation_ids))
                                       .order_by(table.c.id))
    return export


register(SlaClock, export=_exporter(SlaClock.__table__), erase=keep)
register(SlaEvent, export=_exporter(SlaEvent.__table__), erase=keep)
