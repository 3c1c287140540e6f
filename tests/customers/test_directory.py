"""The customer directory, on SQLite and PostgreSQL: every customer newest first, a page at a time,
merged profiles left out; a text found in a name or an address as the inbox search finds it
(through the indexes, through the walk a common text takes, and for rows the index has not taken
in yet); hostile cursors and texts get a clear error or nothing, never a crash."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hub.auth.accounts import create_agent
from hub.contract.errors import RejectedInput
from hub.contract.messages import InboundMessage, Sender
from hub.contract.principal import Principal
from hub.conversations.search import substrings
from hub.customers import panel
from hub.customers.directory import list_customers
from hub.customers.profiles import merge_customers
from hub.ingest.pipeline import ingest
from hub.store.db import index_search_queue, write_tx
from hub.store.models import Customer, utcnow


def mail(engine, ext: str, address: str, name: str):
    return ingest(engine, InboundMessage("email", f"<{ext}@example.com>", Sender(address, name), "Hello", subject="Hello"))


def call(engine, ext: str, phone: str, name: str):
    return ingest(engine, InboundMessage("voice", ext, Sender(phone, name), "Customer: where is my order?", subject="Call"))


def names(page) -> list[str]:
    return [c["name"] for c in page["items"]]


@pytest.fixture
def admin(engine):
    return Principal("agent", create_agent(engine, "ada@example.com", "ada password", role="admin", name="Ada"), "admin", "Ada")


def test_every_customer_newest_first_a_page_at_a_time_without_merged_profiles(engine, admin):
    made = [mail(engine, f"m{i}", f"person{i}@example.com", f"Person {i}") for i in range(7)]
    twin = mail(engine, "twin", "twin@example.com", "Person 6 again")
    merge_customers(engine, made[6].customer_id, twin.customer_id, admin)
    first = list_customers(engine, limit=3)
    assert names(first) == ["Person 6", "Person 5", "Person 4"] and first["next_cursor"]
    [six] = [c for c in first["items"] if c["name"] == "Person 6"]
    assert six["conversations"] == 2 and six["last_contact_at"].endswith("Z")
    assert {a["address"] for a in six["addresses"]} == {"person6@example.com", "twin@example.com"}
    second = list_customers(engine, after=first["next_cursor"], limit=3)
    last = list_customers(engine, after=second["next_cursor"], limit=3)
    assert names(second) == ["Person 3", "Person 2", "Person 1"] and names(last) == ["Person 0"] and last["next_cursor"] is None


def test_a_text_is_found_in_a_name_or_an_address_folded_for_case_and_accents(engine):
    mail(engine, "a", "chloe.martin@example.com", "Chloé Martin")
    call(engine, "c1", "+44 20 7946 0958", "Bob Stone")
    mail(engine, "b", "someone@other.example", "Ana Silva")
    index_search_queue(engine)
    assert names(list_customers(engine, "MARTIN")) == ["Chloé Martin"]
    assert names(list_customers(engine, "chloe martin")) == names(list_customers(engine, "CHLOÉ")) == ["Chloé Martin"], "accents folded"
    assert names(list_customers(engine, "ch")) == ["Chloé Martin"], "two characters, folded"
    assert names(list_customers(engine, "other.exam")) == ["Ana Silva"]
    assert names(list_customers(engine, "+44 20 7946 0958")) == ["Bob Stone"], "a phone as agents write it"
    assert names(list_customers(engine, "si")) == ["Ana Silva"], "two characters"
    assert list_customers(engine, "nobody-has-this")["items"] == []


def test_a_customer_without_conversations_and_rows_not_yet_indexed_are_found(engine, admin):
    r = mail(engine, "a", "quinn@example.com", "Quinn Adams")
    now = utcnow()
    with write_tx(engine) as conn:  # a profile with no conversation (its conversations moved away, say)
        lone = conn.execute(sa.insert(Customer.__table__).values(name="Quinn Lonely", created_at=now, updated_at=now)
                            .returning(Customer.__table__.c.id)).scalar_one()
    panel.add_identity(engine, r.customer_id, "email", "quinn.second@example.com", admin)  # left in the queue
    assert names(list_customers(engine, "quinn")) == ["Quinn Lonely", "Quinn Adams"]
    assert names(list_customers(engine, "QUÍNN")) == ["Quinn Lonely", "Quinn Adams"]
    assert names(list_customers(engine, "quinn.second")) == ["Quinn Adams"]
    assert list_customers(engine, "lonely")["items"][0]["id"] == lone


def test_a_common_text_walks_the_customers_and_finds_the_same(engine, monkeypatch):
    for i in range(12):
        mail(engine, f"m{i}", f"kowalski{i}@example.com", f"Jan Kowalski {i}")
    index_search_queue(engine)
    through_index = list_customers(engine, "kowal", limit=5)
    monkeypatch.setattr(substrings, "SEARCH_MAX_CANDIDATES", 3)  # "common": more matches than the index is asked for
    walked = list_customers(engine, "kowal", limit=5)
    assert names(walked) == names(through_index) == [f"Jan Kowalski {i}" for i in (11, 10, 9, 8, 7)]
    assert names(list_customers(engine, "kowal", after=walked["next_cursor"], limit=5)) == [f"Jan Kowalski {i}" for i in (6, 5, 4, 3, 2)]


@pytest.mark.parametrize("cursor", ["abc", "-1", "1" * 40, "1; DROP TABLE customer", "１２"])
def test_a_forged_cursor_is_refused_clearly(engine, cursor):
    with pytest.raises(RejectedInput, match="cursor"):
        list_customers(engine, after=cursor)


def test_hostile_texts_find_nothing_and_break_nothing(engine):
    mail(engine, "a", "ana@example.com", "Ana Silva")
    index_search_queue(engine)
    for q in ('"', "%", "_", "\\", "' OR 1=1 --", "a" * 200, "\u0301" * 200, '" OR "a'):
        assert list_customers(engine, q)["items"] == [], q
