"""Privacy parts of the outbox: what the hub sent, or was to send, to the customer.

Export: the outbox rows of their messages. Erase: those rows, and any whose payload names them (a
reply copied to them, a survey), keep their status and times (delivery figures) but lose the
payload; one still waiting to be sent is given up ("customer erased") rather than sent to nobody.
"""

from __future__ import annotations

from sqlalchemy import Text, cast, or_, select, update

from hub.privacy import Erasure, Export, among, register, rows_of
from hub.store.models import Outbox, OutboxStatus

outbox_t = Outbox.__table__


def export_outbox(ex: Export) -> None:
    ex.sections["outbox"] = rows_of(ex.conn, select(outbox_t).where(among(outbox_t.c.message_id, ex.subject.message_ids))
                                    .order_by(outbox_t.c.id))


def erase_outbox(er: Erasure) -> None:
    s = er.subject
    where = [among(outbox_t.c.message_id, s.message_ids)]
    where += [cast(outbox_t.c.payload, Text).contains(n, autoescape=True) for n in s.needles]
    ids = list(er.conn.execute(select(outbox_t.c.id).where(or_(*where))).scalars())
    er.conn.execute(update(outbox_t).where(among(outbox_t.c.id, ids), outbox_t.c.status.in_([OutboxStatus.pending, OutboxStatus.sending]))
                    .values(status=OutboxStatus.dead, last_error="customer erased", locked_until=None))
    er.conn.execute(update(outbox_t).where(among(outbox_t.c.id, ids)).values(payload={}))
    er.counts["outbox"] = len(ids)


register(Outbox, export=export_outbox, erase=erase_outbox)
