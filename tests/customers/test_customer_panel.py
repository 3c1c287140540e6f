"""The customer panel's store, on SQLite and PostgreSQL: what an agent changes on a customer (name,
addresses, notes, attributes, tags) is audit-logged with who did it; an address an agent adds is a
way to answer but never verified for the order-facts privacy rule; an address another customer
has is refused with that customer named for a merge review; hostile input gets a clear error and
changes nothing; duplicates are suggested on shared addresses and on the same name with the same
order, folded for case and accents."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hub.auth.accounts import create_agent
from hub.contract.errors import Conflict, NotFound, RejectedInput, UnreadableInput
from hub.contract.messages import InboundMessage, Sender
from hub.contract.principal import Principal
from hub.conversations.replies import reply_recipient
from hub.customers import duplicates, panel
from hub.customers.profiles import merge_customers
from hub.ingest.pipeline import ingest
from hub.scm.backend import customer_ref
from hub.store.db import read_tx, write_tx
from hub.store.models import AuditLog, Identity, ScmFact, utcnow


@pytest.fixture
def people(engine):
    ada = create_agent(engine, "ada@example.com", "ada password", role="admin", name="Ada Lovelace")
    bo = create_agent(engine, "bo@example.com", "bo password", role="agent", name="Bo Diddley")
    return Principal("agent", ada, "admin", "Ada Lovelace"), Principal("agent", bo, "agent", "Bo Diddley")


def call(engine, ext: str, phone: str, name: str):
    return ingest(engine, InboundMessage("voice", ext, Sender(phone, name), "Customer: where is my order?", subject="Call"))


def mail(engine, ext: str, address: str, name: str, text: str = "Hello"):
    return ingest(engine, InboundMessage("email", f"<{ext}@example.com>", Sender(address, name), text, subject="Hello"))


def audit_actions(engine, customer_id: int) -> list[tuple[str, str]]:
    t = AuditLog.__table__
    with read_tx(engine) as conn:
        return [(r.actor, r.action) for r in conn.execute(sa.select(t.c.actor, t.c.action)
                                                          .where(t.c.target == f"customer:{customer_id}").order_by(t.c.id))]


def test_an_added_email_answers_a_caller_but_is_not_verified(engine, people):
    _, bo = people
    r = call(engine, "call-1", "+44 20 7946 0958", "Chloé Martin")
    assert reply_recipient(engine, r.conversation_id)["error"]  # a call, and no address to answer by email
    added = panel.add_identity(engine, r.customer_id, "email", "  Chloe.Martin@Example.COM ", bo)
    assert added == {"id": added["id"], "kind": "email", "address": "chloe.martin@example.com", "verified": False}
    to = reply_recipient(engine, r.conversation_id)
    assert to["error"] is None and to["channel"] == "email" and to["address"] == "chloe.martin@example.com"
    # The privacy rule's view of the customer: only what a channel proved, so not the typed address.
    with read_tx(engine) as conn:
        idents = conn.execute(sa.select(Identity.__table__).where(Identity.__table__.c.customer_id == r.customer_id)).all()
    assert [i.verified for i in idents if i.kind == "email"] == [False]
    assert customer_ref(r.customer_id, "Chloé Martin", "general", idents).emails == ()
    assert (f"agent:{bo.id}", "customer.identity_add") in audit_actions(engine, r.customer_id)


def test_an_address_another_customer_has_is_refused_naming_them_for_a_merge(engine, people):
    _, bo = people
    ana = mail(engine, "a1", "ana@example.com", "Ana Silva")
    caller = call(engine, "call-2", "+442079460958", "Ana S")
    with pytest.raises(panel.AddressTaken) as taken:
        panel.add_identity(engine, caller.customer_id, "email", "ANA@example.com", bo)
    assert taken.value.detail["customer_id"] == ana.customer_id
    assert taken.value.detail["merge_review"] == f"/inbox/customers/{caller.customer_id}/merge?other={ana.customer_id}"
    assert "Ana Silva" in taken.value.message and "merg" in taken.value.message
    # Phone numbers in their other written forms are the same number.
    with pytest.raises(panel.AddressTaken):
        panel.add_identity(engine, ana.customer_id, "phone", "+44 (0)20 7946-0958", bo)
    with pytest.raises(Conflict):
        panel.add_identity(engine, ana.customer_id, "email", "ana@example.com", bo)  # already theirs
    with read_tx(engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Identity.__table__)).scalar() == 2


def test_notes_attributes_tags_and_the_name_are_kept_and_audited(engine, people):
    ada, bo = people
    r = mail(engine, "n1", "dmitri@example.org", "Dmitri Volkov")
    cid = r.customer_id
    panel.rename(engine, cid, "  Dmitri   Volkov-Ivanov ", bo)
    note = panel.add_note(engine, cid, "Prefers phone calls.\nWholesale buyer.", bo)
    assert note["author"] == "Bo Diddley" and note["text"] == "Prefers phone calls.\nWholesale buyer."
    panel.set_attribute(engine, cid, "Plan", "gold", bo)
    panel.set_attribute(engine, cid, "plan", "platinum", ada)  # keys fold case: one attribute
    assert panel.add_tag(engine, cid, "VIP", bo) == {"tag": "vip", "added": True}
    assert panel.add_tag(engine, cid, "vip", bo)["added"] is False
    kept = panel.panel(engine, cid)
    assert [(a["key"], a["value"], a["updated_by"]) for a in kept["attributes"]] == [("plan", "platinum", f"agent:{ada.id}")]
    assert kept["tags"] == ["vip"] and [n["author"] for n in kept["notes"]] == ["Bo Diddley"]
    with read_tx(engine) as conn:
        assert conn.execute(sa.text(f"SELECT name FROM customer WHERE id = {cid}")).scalar() == "Dmitri Volkov-Ivanov"
    with pytest.raises(Conflict):
        panel.delete_note(engine, cid, note["id"], Principal("agent", 999, "agent", "someone else"))
    panel.delete_note(engine, cid, note["id"], ada)  # an admin may
    panel.remove_tag(engine, cid, "VIP", bo)
    panel.remove_attribute(engine, cid, "PLAN", bo)
    assert panel.panel(engine, cid) | {"removable_identities": []} == {"notes": [], "attributes": [], "tags": [],
                                                                       "removable_identities": []}
    actions = [a for _, a in audit_actions(engine, cid)]
    assert actions == ["customer.rename", "customer.note", "customer.attribute", "customer.attribute", "customer.tag",
                       "customer.note_delete", "customer.untag", "customer.attribute_remove"]


def test_hostile_input_is_refused_and_changes_nothing(engine, people):
    _, bo = people
    r = mail(engine, "h1", "eve@example.com", "Eve")
    cid = r.customer_id
    with pytest.raises(UnreadableInput):
        panel.add_note(engine, cid, "hello\x00world", bo)
    with pytest.raises(UnreadableInput):
        panel.rename(engine, cid, "Eve\x1b[31m", bo)
    with pytest.raises(RejectedInput, match="at most 10,000"):
        panel.add_note(engine, cid, "x" * 2_000_000, bo)
    with pytest.raises(RejectedInput):
        panel.add_identity(engine, cid, "telegram", "12345", bo)  # only email and phone by hand
    with pytest.raises(RejectedInput):
        panel.add_identity(engine, cid, "phone", "020 7946 0958", bo)  # no country code: which country?
    with pytest.raises(RejectedInput):
        panel.add_tag(engine, cid, "a,b", bo)
    with pytest.raises(NotFound):
        panel.add_note(engine, 999_999, "who?", bo)
    with pytest.raises(NotFound):
        panel.remove_identity(engine, cid, 999_999, bo)
    own = panel.panel(engine, cid)
    assert own["removable_identities"] == []  # she wrote from her address: it stays
    with read_tx(engine) as conn:
        ident = conn.execute(sa.select(Identity.__table__.c.id).where(Identity.__table__.c.customer_id == cid)).scalar()
    with pytest.raises(Conflict, match="wrote from this address"):
        panel.remove_identity(engine, cid, ident, bo)
    other = mail(engine, "h2", "mallory@example.com", "Mallory")
    with pytest.raises(NotFound):  # another customer's address, by a guessed id
        panel.remove_identity(engine, other.customer_id, ident, bo)
    assert panel.panel(engine, cid)["notes"] == [] and audit_actions(engine, cid) == []
    merge_customers(engine, other.customer_id, cid, bo)
    with pytest.raises(Conflict, match="merged into"):
        panel.add_note(engine, cid, "too late", bo)


def test_an_address_an_agent_added_can_be_removed_again(engine, people):
    _, bo = people
    r = call(engine, "call-3", "+4915112345678", "Lena")
    added = panel.add_identity(engine, r.customer_id, "email", "lena@example.net", bo)
    assert added["id"] in panel.panel(engine, r.customer_id)["removable_identities"]
    panel.remove_identity(engine, r.customer_id, added["id"], bo)
    assert reply_recipient(engine, r.conversation_id)["error"]


def _order_fact(engine, result, ref: str, owner_email: str | None = None) -> None:
    with write_tx(engine) as conn:
        conn.execute(ScmFact.__table__.insert().values(
            conversation_id=result.conversation_id, message_id=result.message_id, kind="order", subject=ref,
            payload={"ref": ref, "state": "shipped", "owner_email": owner_email}, created_at=utcnow()))


def test_two_chloe_martins_with_the_same_order_are_suggested_as_duplicates(engine, people):
    by_mail = mail(engine, "c1", "chloe.martin@example.com", "Chloé Martin", "Where is my order SO-4711?")
    by_phone = call(engine, "call-4", "+44 20 7946 0958", "Chloe MARTIN")
    stranger = mail(engine, "c2", "other@example.com", "Chloé Martin", "Where is SO-9999?")
    namesake = mail(engine, "c3", "namesake@example.com", "Ben Okafor", "Where is my order SO-4711?")
    for r in (by_mail, by_phone, namesake):
        _order_fact(engine, r, "SO-4711", owner_email="chloe.martin@example.com")
    _order_fact(engine, stranger, "SO-9999", owner_email="other@example.com")
    seen_from_phone = duplicates.suggestions(engine, by_phone.customer_id)
    assert [s["customer_id"] for s in seen_from_phone] == [by_mail.customer_id]
    assert any("same name" in r for r in seen_from_phone[0]["reasons"])
    assert any("chloe.martin@example.com" in r for r in seen_from_phone[0]["reasons"])
    assert seen_from_phone[0]["merge_review"] == f"/inbox/customers/{by_phone.customer_id}/merge?other={by_mail.customer_id}"
    seen_from_mail = {s["customer_id"] for s in duplicates.suggestions(engine, by_mail.customer_id)}
    # The namesake asked about Chloé's order (it is hers): worth a look; a namesake with other orders is not.
    assert by_phone.customer_id in seen_from_mail and stranger.customer_id not in seen_from_mail
    merge_customers(engine, by_mail.customer_id, by_phone.customer_id, Principal("agent", people[0].id, "admin", "Ada"))
    assert by_phone.customer_id not in {s["customer_id"] for s in duplicates.suggestions(engine, by_mail.customer_id)}
    assert duplicates.suggestions(engine, by_phone.customer_id) == []  # merged away: nothing to suggest


def test_the_same_address_filed_under_another_kind_is_a_duplicate(engine, people):
    a = mail(engine, "w1", "dana@example.com", "Dana")
    b = ingest(engine, InboundMessage("webform", "form-1", Sender("Dana@Example.com", "Dana", "web"), "Hi from the form"))
    assert a.customer_id != b.customer_id
    assert [s["customer_id"] for s in duplicates.suggestions(engine, b.customer_id)] == [a.customer_id]


def test_export_holds_and_erasure_removes_what_agents_kept_on_the_customer(engine, people):
    from hub.conversations.actions import add_note as conversation_note
    from hub.notifications import store as notifications
    from hub.privacy.requests import erase_customer, export_customer

    ada, bo = people
    r = mail(engine, "p1", "gina@example.com", "Gina Rossi")
    panel.add_note(engine, r.customer_id, "Gina's husband calls for her", bo)
    panel.set_attribute(engine, r.customer_id, "plan", "gold", bo)
    panel.add_tag(engine, r.customer_id, "vip", bo)
    conversation_note(engine, r.conversation_id, ada, "@Bo Gina Rossi asked twice")
    exported = export_customer(engine, r.customer_id)
    assert exported["customer_notes"][0]["text"] == "Gina's husband calls for her"
    assert exported["customer_attributes"][0]["value"] == "gold" and exported["customer_tags"][0]["tag"] == "vip"
    assert "Gina Rossi" in notifications.list_for(engine, bo.id)["items"][0]["text"]
    erase_customer(engine, None, r.customer_id, "agent:1", reason="asked")
    kept = panel.panel(engine, r.customer_id)
    assert (kept["notes"], kept["attributes"], kept["tags"]) == ([], [], [])
    assert notifications.list_for(engine, bo.id) == {"items": [], "unread": 0}
