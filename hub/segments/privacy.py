"""Privacy parts of customer value: the customer's order and contact figures over the segment
window. Exported; on erasure the figures stay with the anonymised profile (its segment and the
reports by segment rest on them) and the back end's last error message, which may quote the
customer's data, is cleared.
"""

from __future__ import annotations

from sqlalchemy import select, update

from hub.privacy import Erasure, Export, among, register, rows_of
from hub.store.models import CustomerValue

value_t = CustomerValue.__table__


def export_value(ex: Export) -> None:
    ex.other[value_t.name] = rows_of(ex.conn, select(value_t).where(among(value_t.c.customer_id, ex.subject.customer_ids))
                                     .order_by(value_t.c.id))


def erase_value(er: Erasure) -> None:
    er.conn.execute(update(value_t).where(among(value_t.c.customer_id, er.subject.customer_ids)).values(error=None))


register(CustomerValue, export=export_value, erase=erase_value)
