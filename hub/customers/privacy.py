"""Privacy parts of the customer tables: who the customer is (the profile and the profiles merged
into it, their identities) and the link codes issued to them.

Export: the profile, the merged profiles, the identities, the link codes (without their hashes),
the agents' notes, attributes and tags on the customer.
Erase: identities, link codes, notes, attributes and tags are deleted; the profile stays as "erased
customer #id" with its segment, so the reports' counts by customer and segment do not change.
"""

from __future__ import annotations

from sqlalchemy import delete, or_, select, update

from hub.contract.errors import Conflict, NotFound
from hub.contract.i18n import N_
from hub.privacy import WHO, Erasure, Export, Subject, among, register, register_scope, rows_of
from hub.store.models import Customer, CustomerAttribute, CustomerNote, CustomerTag, Identity, LinkCode, utcnow
from hub.store.sql import lock_row

customer_t = Customer.__table__
identity_t = Identity.__table__
link_t = LinkCode.__table__


def resolve_customer(conn, subject: Subject) -> None:
    """The customer, every profile merged into it (tombstones keep the old name) and their identities.
    A merged profile is refused: the request is about the profile it was merged into."""
    row = conn.execute(select(customer_t.c.id, customer_t.c.merged_into).where(customer_t.c.id == subject.customer_id)).first()
    if row is None:
        raise NotFound(N_("customer %(id)s does not exist"), params={"id": subject.customer_id})
    if row.merged_into is not None:
        raise Conflict(N_("customer %(id)s was merged into customer %(into)s: use that customer"), params={"id": subject.customer_id, "into": row.merged_into})
    if subject.for_erasure:
        # A merge or another erasure of the same customer waits for this one.
        lock_row(conn, customer_t, subject.customer_id)
    ids, frontier = [subject.customer_id], [subject.customer_id]
    while frontier:
        frontier = list(conn.execute(select(customer_t.c.id).where(among(customer_t.c.merged_into, frontier))).scalars())
        ids.extend(i for i in frontier if i not in ids)
    subject.customer_ids = ids
    identities = conn.execute(select(identity_t.c.id, identity_t.c.address, identity_t.c.display_name)
                              .where(among(identity_t.c.customer_id, ids)).order_by(identity_t.c.id)).all()
    subject.identity_ids = [i.id for i in identities]
    subject.addresses = [i.address for i in identities if i.address]
    names = conn.execute(select(customer_t.c.name).where(among(customer_t.c.id, ids))).scalars()
    subject.names = sorted({n for n in names if n} | {i.display_name for i in identities if i.display_name})
    subject.audit_targets += [f"customer:{i}" for i in ids]


def export_customers(ex: Export) -> None:
    ids = ex.subject.customer_ids
    rows = rows_of(ex.conn, select(customer_t).where(among(customer_t.c.id, ids)).order_by(customer_t.c.id))
    ex.sections["customer"] = next(c for c in rows if c["id"] == ex.subject.customer_id)
    ex.sections["merged_customers"] = [c for c in rows if c["id"] != ex.subject.customer_id]


def erase_customers(er: Erasure) -> None:
    for cid in er.subject.customer_ids:
        er.conn.execute(update(customer_t).where(customer_t.c.id == cid).values(name=f"erased customer #{cid}", updated_at=utcnow()))


def export_identities(ex: Export) -> None:
    ex.sections["identities"] = rows_of(ex.conn, select(identity_t).where(among(identity_t.c.id, ex.subject.identity_ids))
                                        .order_by(identity_t.c.id))


def erase_identities(er: Erasure) -> None:
    # Messages let go of them first (the conversations part runs before: message points at identity).
    er.counts["identities"] = er.conn.execute(delete(identity_t).where(among(identity_t.c.id, er.subject.identity_ids))).rowcount


def _link_codes(subject: Subject):
    return or_(among(link_t.c.customer_id, subject.customer_ids), among(link_t.c.used_by_identity_id, subject.identity_ids))


def export_link_codes(ex: Export) -> None:
    ex.sections["link_codes"] = rows_of(ex.conn, select(link_t.c.id, link_t.c.customer_id, link_t.c.created_at, link_t.c.expires_at,
                                                        link_t.c.used_at, link_t.c.used_by_identity_id)
                                        .where(_link_codes(ex.subject)).order_by(link_t.c.id))


def erase_link_codes(er: Erasure) -> None:
    er.conn.execute(delete(link_t).where(_link_codes(er.subject)))


def _kept_on_customer(model, section: str):
    """Export and erase of a table of things agents keep on the customer (notes, attributes, tags)."""
    table = model.__table__

    def export(ex: Export) -> None:
        ex.sections[section] = rows_of(ex.conn, select(table).where(among(table.c.customer_id, ex.subject.customer_ids))
                                       .order_by(table.c.id))

    def erase(er: Erasure) -> None:
        er.counts[section] = er.conn.execute(delete(table).where(among(table.c.customer_id, er.subject.customer_ids))).rowcount

    return export, erase


register_scope(resolve_customer, stage=WHO)
register(Customer, export=export_customers, erase=erase_customers)
register(Identity, export=export_identities, erase=erase_identities)
register(LinkCode, export=export_link_codes, erase=erase_link_codes)
for _model, _section in ((CustomerNote, "customer_notes"), (CustomerAttribute, "customer_attributes"), (CustomerTag, "customer_tags")):
    _export, _erase = _kept_on_customer(_model, _section)
    register(_model, export=_export, erase=_erase)
