"""What agents keep on a customer and change by hand: the name, the addresses and phone numbers
they can be reached on, notes, attributes ("plan: gold") and tags. Every change is audit-logged
with the agent who made it (customer.* actions) and moves the customer's updated_at.

An address an agent adds is a channel replies can go to (hub/conversations/replies.py picks the
customer's address of the channel's kind) but it is never verified: the privacy rule for order
facts trusts only addresses a channel proved (hub/scm/backend.py), and typing an address into a
form proves nothing about who reads it. An address another customer already has is refused with
that customer named, so the agent can review a merge instead.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, update

from hub.contract.addresses import normalise
from hub.contract.errors import Conflict, NotFound, RejectedInput
from hub.contract.i18n import N_, Word
from hub.contract.principal import Principal
from hub.contract.timefmt import iso
from hub.store.audit import audit
from hub.store.db import read_tx, write_tx
from hub.store.models import Agent, Customer, CustomerAttribute, CustomerNote, CustomerTag, Identity, IdentityKind, Message, utcnow
from hub.store.search_text import refuse_control_characters

customer_t = Customer.__table__
identity_t = Identity.__table__
note_t = CustomerNote.__table__
attribute_t = CustomerAttribute.__table__
tag_t = CustomerTag.__table__
message_t = Message.__table__
agent_t = Agent.__table__

NAME_LIMIT = 200
NOTE_LIMIT = 10_000
KEY_LIMIT = 64
VALUE_LIMIT = 500
TAG_LIMIT = 64
PER_CUSTOMER = 100  # attributes, tags: a panel, not a database
# The kinds an agent may add: what a reply can go to (email) or a call can be matched on (phone).
ADDABLE = (IdentityKind.email, IdentityKind.phone)


class AddressTaken(Conflict):
    """The address belongs to another customer: detail names them, for a merge review."""

    code = "address_taken"


def _text(value: Any, what: str, limit: int, *, multiline: bool = False, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise RejectedInput(N_("%(what)s must be text"), params={"what": what})
    refuse_control_characters(value, what)  # tabs and line breaks pass; single-line values fold them below
    clean = value.strip() if multiline else " ".join(value.split())
    if not clean and not allow_empty:
        raise RejectedInput(N_("%(what)s cannot be empty"), params={"what": what})
    if len(clean) > limit:
        raise RejectedInput(N_("%(what)s can have at most %(limit)s characters (this one has %(length)s)"),
                            params={"what": what, "limit": f"{limit:,}", "length": f"{len(clean):,}"})
    return clean


def _live_customer(conn: Connection, customer_id: int):
    row = conn.execute(select(customer_t.c.id, customer_t.c.merged_into).where(customer_t.c.id == customer_id)).first()
    if row is None:
        raise NotFound(N_("customer %(id)s does not exist"), params={"id": customer_id})
    if row.merged_into is not None:
        raise Conflict(N_("customer %(id)s was merged into customer %(into)s: change that customer"),
                       params={"id": customer_id, "into": row.merged_into})
    return row


def _touch(conn: Connection, customer_id: int) -> None:
    conn.execute(update(customer_t).where(customer_t.c.id == customer_id).values(updated_at=utcnow()))


def rename(engine: Engine, customer_id: int, name: str, who: Principal) -> dict[str, Any]:
    """A new name for the customer (empty: no name)."""
    clean = _text(name, Word(N_("the name")), NAME_LIMIT, allow_empty=True) or None
    with write_tx(engine) as conn:
        _live_customer(conn, customer_id)
        old = conn.execute(select(customer_t.c.name).where(customer_t.c.id == customer_id)).scalar()
        conn.execute(update(customer_t).where(customer_t.c.id == customer_id).values(name=clean, updated_at=utcnow()))
        # Names are personal data: the audit log (which outlives an erasure) says that, not what.
        audit(conn, who.actor, "customer.rename", f"customer:{customer_id}", had_name=old is not None)
    return {"id": customer_id, "name": clean}


def add_identity(engine: Engine, customer_id: int, kind: str, address: str, who: Principal, *,
                 phone_region: str | None = None) -> dict[str, Any]:
    """An email address or phone number the customer can be reached on, unverified. AddressTaken
    when another customer has it (detail: their id and name)."""
    try:
        ikind = IdentityKind(kind)
    except ValueError:
        raise RejectedInput(N_("kind must be email or phone")) from None
    if ikind not in ADDABLE:
        raise RejectedInput(N_("an agent can add an email address or a phone number; other channels link with a link code"))
    raw = _text(address, Word(N_("the address")), 320)
    value = normalise(ikind, raw, phone_region=phone_region)
    with write_tx(engine) as conn:
        _live_customer(conn, customer_id)
        holder = conn.execute(select(identity_t.c.id, identity_t.c.customer_id, customer_t.c.name)
                              .join(customer_t, customer_t.c.id == identity_t.c.customer_id)
                              .where(identity_t.c.kind == ikind.value, identity_t.c.address == value)).first()
        if holder is not None:
            if holder.customer_id == customer_id:
                raise Conflict(N_("this customer already has %(address)s"), params={"address": value})
            raise AddressTaken(
                N_("%(address)s belongs to another customer (%(other)s, #%(id)s); if they are the same person, "
                   "review merging the two customers instead"),
                params={"address": value, "other": holder.name or Word(N_("no name")), "id": holder.customer_id},
                detail={"customer_id": holder.customer_id, "name": holder.name,
                        "merge_review": f"/inbox/customers/{customer_id}/merge?other={holder.customer_id}"})
        identity_id = conn.execute(identity_t.insert().values(
            customer_id=customer_id, kind=ikind.value, address=value, display_name=None, verified=False, created_at=utcnow(),
        ).returning(identity_t.c.id)).scalar_one()
        _touch(conn, customer_id)
        audit(conn, who.actor, "customer.identity_add", f"customer:{customer_id}", identity=identity_id, kind=ikind.value)
    return {"id": identity_id, "kind": ikind.value, "address": value, "verified": False}


def remove_identity(engine: Engine, customer_id: int, identity_id: int, who: Principal) -> None:
    """Take an address off the customer: one nobody wrote from (an agent added it, or a typo).
    An address the customer wrote from stays: their messages point at it."""
    with write_tx(engine) as conn:
        _live_customer(conn, customer_id)
        row = conn.execute(select(identity_t.c.kind).where(identity_t.c.id == identity_id,
                                                           identity_t.c.customer_id == customer_id)).first()
        if row is None:
            raise NotFound(N_("customer %(id)s has no address %(address)s"), params={"id": customer_id, "address": identity_id})
        if conn.execute(select(message_t.c.id).where(message_t.c.identity_id == identity_id).limit(1)).first():
            raise Conflict(N_("the customer wrote from this address, so it stays on their record; if it is not theirs, "
                              "remove it with its link code or ask an admin"))
        conn.execute(delete(identity_t).where(identity_t.c.id == identity_id))
        _touch(conn, customer_id)
        audit(conn, who.actor, "customer.identity_remove", f"customer:{customer_id}", identity=identity_id, kind=row.kind)


def add_note(engine: Engine, customer_id: int, text: str, who: Principal) -> dict[str, Any]:
    clean = _text(text, Word(N_("the note")), NOTE_LIMIT, multiline=True)
    now = utcnow()
    with write_tx(engine) as conn:
        _live_customer(conn, customer_id)
        author = who.name
        if who.is_agent:
            author = conn.execute(select(func.coalesce(agent_t.c.name, agent_t.c.email)).where(agent_t.c.id == who.id)).scalar() or who.name
        note_id = conn.execute(note_t.insert().values(
            customer_id=customer_id, agent_id=who.id if who.is_agent else None, author=(author or who.actor)[:200],
            text=clean, created_at=now).returning(note_t.c.id)).scalar_one()
        _touch(conn, customer_id)
        audit(conn, who.actor, "customer.note", f"customer:{customer_id}", note=note_id)
    return {"id": note_id, "author": author, "text": clean, "created_at": iso(now)}


def delete_note(engine: Engine, customer_id: int, note_id: int, who: Principal) -> None:
    """An agent deletes their own note; an admin any note."""
    with write_tx(engine) as conn:
        row = conn.execute(select(note_t.c.agent_id).where(note_t.c.id == note_id, note_t.c.customer_id == customer_id)).first()
        if row is None:
            raise NotFound(N_("customer %(id)s has no note %(note)s"), params={"id": customer_id, "note": note_id})
        if who.role != "admin" and not (who.is_agent and row.agent_id == who.id):
            raise Conflict(N_("only its author or an admin can delete a note"))
        conn.execute(delete(note_t).where(note_t.c.id == note_id))
        audit(conn, who.actor, "customer.note_delete", f"customer:{customer_id}", note=note_id)


def set_attribute(engine: Engine, customer_id: int, key: str, value: str, who: Principal) -> dict[str, Any]:
    """Set (or change) one attribute; keys are compared case-folded ("Plan" is "plan")."""
    k = _text(key, Word(N_("the attribute's name")), KEY_LIMIT).casefold()
    v = _text(value, Word(N_("the attribute's value")), VALUE_LIMIT)
    now = utcnow()
    with write_tx(engine) as conn:
        _live_customer(conn, customer_id)
        done = conn.execute(update(attribute_t).where(attribute_t.c.customer_id == customer_id, attribute_t.c.key == k)
                            .values(value=v, updated_by=who.actor, updated_at=now)).rowcount
        if not done:
            count = conn.execute(select(func.count()).select_from(attribute_t).where(attribute_t.c.customer_id == customer_id)).scalar()
            if count >= PER_CUSTOMER:
                raise RejectedInput(N_("a customer can have at most %(num)s attributes"), params={"num": PER_CUSTOMER})
            conn.execute(attribute_t.insert().values(customer_id=customer_id, key=k, value=v, updated_by=who.actor, updated_at=now))
        _touch(conn, customer_id)
        audit(conn, who.actor, "customer.attribute", f"customer:{customer_id}", key=k, changed=bool(done))
    return {"key": k, "value": v}


def remove_attribute(engine: Engine, customer_id: int, key: str, who: Principal) -> None:
    k = _text(key, Word(N_("the attribute's name")), KEY_LIMIT).casefold()
    with write_tx(engine) as conn:
        _live_customer(conn, customer_id)
        if not conn.execute(delete(attribute_t).where(attribute_t.c.customer_id == customer_id, attribute_t.c.key == k)).rowcount:
            raise NotFound(N_("customer %(id)s has no attribute %(name)s"), params={"id": customer_id, "name": repr(k)})
        _touch(conn, customer_id)
        audit(conn, who.actor, "customer.attribute_remove", f"customer:{customer_id}", key=k)


def _tag(value: str) -> str:
    tag = _text(value, Word(N_("the tag")), TAG_LIMIT).casefold()
    if "," in tag:
        raise RejectedInput(N_("one tag at a time (no commas)"))
    return tag


def add_tag(engine: Engine, customer_id: int, tag: str, who: Principal) -> dict[str, Any]:
    t = _tag(tag)
    with write_tx(engine) as conn:
        _live_customer(conn, customer_id)
        if conn.execute(select(tag_t.c.id).where(tag_t.c.customer_id == customer_id, tag_t.c.tag == t)).first():
            return {"tag": t, "added": False}
        count = conn.execute(select(func.count()).select_from(tag_t).where(tag_t.c.customer_id == customer_id)).scalar()
        if count >= PER_CUSTOMER:
            raise RejectedInput(N_("a customer can have at most %(num)s tags"), params={"num": PER_CUSTOMER})
        conn.execute(tag_t.insert().values(customer_id=customer_id, tag=t, created_by=who.actor, created_at=utcnow()))
        _touch(conn, customer_id)
        audit(conn, who.actor, "customer.tag", f"customer:{customer_id}", tag=t)
    return {"tag": t, "added": True}


def remove_tag(engine: Engine, customer_id: int, tag: str, who: Principal) -> None:
    t = _tag(tag)
    with write_tx(engine) as conn:
        _live_customer(conn, customer_id)
        if not conn.execute(delete(tag_t).where(tag_t.c.customer_id == customer_id, tag_t.c.tag == t)).rowcount:
            raise NotFound(N_("customer %(id)s has no tag %(name)s"), params={"id": customer_id, "name": repr(t)})
        _touch(conn, customer_id)
        audit(conn, who.actor, "customer.untag", f"customer:{customer_id}", tag=t)


def kept_on(conn: Connection, customer_id: int) -> dict[str, Any]:
    """The notes (newest first), attributes and tags on the customer, and which addresses nobody
    wrote from (those an agent can remove)."""
    notes = conn.execute(select(note_t).where(note_t.c.customer_id == customer_id)
                         .order_by(note_t.c.id.desc()).limit(100)).all()
    attributes = conn.execute(select(attribute_t.c.key, attribute_t.c.value, attribute_t.c.updated_by, attribute_t.c.updated_at)
                              .where(attribute_t.c.customer_id == customer_id).order_by(attribute_t.c.key)).all()
    tags = conn.execute(select(tag_t.c.tag).where(tag_t.c.customer_id == customer_id).order_by(tag_t.c.tag)).scalars().all()
    ids = list(conn.execute(select(identity_t.c.id).where(identity_t.c.customer_id == customer_id)).scalars())
    used = set(conn.execute(select(message_t.c.identity_id).where(message_t.c.identity_id.in_(ids)).distinct()).scalars()) if ids else set()
    return {
        "notes": [{"id": n.id, "agent_id": n.agent_id, "author": n.author, "text": n.text, "created_at": iso(n.created_at)}
                  for n in notes],
        "attributes": [{"key": a.key, "value": a.value, "updated_by": a.updated_by, "updated_at": iso(a.updated_at)}
                       for a in attributes],
        "tags": list(tags),
        "removable_identities": [i for i in ids if i not in used],
    }


def panel(engine: Engine, customer_id: int) -> dict[str, Any]:
    with read_tx(engine) as conn:
        if conn.execute(select(customer_t.c.id).where(customer_t.c.id == customer_id)).first() is None:
            raise NotFound(N_("customer %(id)s does not exist"), params={"id": customer_id})
        return kept_on(conn, customer_id)
