"""Continuity across channels at ingest, on SQLite and PostgreSQL: a customer's message that no
thread claims continues their one recent matter, unless something in it points elsewhere."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.customers.linking import issue_code
from hub.ingest.pipeline import IngestPolicy, ingest
from hub.ingest.threading_rules import references_in
from hub.store.models import Conversation, utcnow

conv_t = Conversation.__table__


def mail(ext, text, *, sender="ana@example.com", subject="My parcel to Lagos", reply_to=()):
    return InboundMessage("email", ext, Sender(sender, "Ana"), text, subject=subject, thread=ThreadHints(in_reply_to=reply_to))


def tg(ext, text, *, user="4242", link_code=None):
    return InboundMessage("telegram", ext, Sender(user, "Ana", "telegram"), text, thread=ThreadHints(thread_key=f"bot:{user}"),
                          link_code=link_code)


def ana_on_both(engine):
    """Ana's email matter, and her Telegram chat linked to her (a link code, as the demo does)."""
    first = ingest(engine, mail("<m1@ana>", "Where is my parcel SO-1001 to Lagos?"))
    code, _ = issue_code(engine, first.customer_id)
    linked = ingest(engine, tg("bot:4242:1", f"/start {code}", link_code=code))
    assert linked.customer_id == first.customer_id
    return first, linked


def test_a_follow_up_on_another_channel_joins_the_customers_one_matter(engine):
    first, linked = ana_on_both(engine)
    assert linked.conversation_id == first.conversation_id
    follow = ingest(engine, tg("bot:4242:2", "I also wrote by email about my parcel"))
    assert follow.conversation_id == first.conversation_id
    # and again: the chat is one running thread
    again = ingest(engine, tg("bot:4242:3", "any news?"))
    assert again.conversation_id == first.conversation_id


def test_a_message_naming_another_order_starts_its_own_matter(engine):
    first, _ = ana_on_both(engine)
    other = ingest(engine, tg("bot:4242:2", "And what about order SO-2002?"))
    assert other.conversation_id != first.conversation_id
    # the same order as the matter's: it continues
    same = ingest(engine, mail("<m2@ana>", "SO-1001 again", subject=None, reply_to=("<m1@ana>",)))
    assert same.conversation_id == first.conversation_id


def test_a_new_email_thread_beside_an_open_email_matter_is_a_new_matter(engine):
    first = ingest(engine, mail("<m1@ana>", "Where is my parcel?"))
    second = ingest(engine, mail("<m2@ana>", "Can I change my password?", subject="Account"))
    assert second.conversation_id != first.conversation_id
    # two matters open now: a chat message cannot tell which it continues
    code, _ = issue_code(engine, first.customer_id)
    ingest(engine, tg("bot:4242:1", f"/start {code}", link_code=code))
    follow = ingest(engine, tg("bot:4242:2", "hello?"))
    assert follow.conversation_id not in (first.conversation_id, second.conversation_id)


def test_outside_the_window_the_message_starts_its_own_matter(engine):
    first, _ = ana_on_both(engine)
    with engine.begin() as conn:
        conn.execute(update(conv_t).where(conv_t.c.id == first.conversation_id)
                     .values(last_message_at=utcnow() - timedelta(hours=25)))
    later = ingest(engine, tg("bot:4242:2", "Hello again"))
    assert later.conversation_id != first.conversation_id
    # a longer window reaches it
    with engine.begin() as conn:
        conn.execute(update(conv_t).where(conv_t.c.id != first.conversation_id).values(status="closed"))
    wide = ingest(engine, tg("bot:4242:3", "Hello?"), policy=IngestPolicy(continuity_window=timedelta(hours=48)))
    assert wide.conversation_id == first.conversation_id


def test_a_resolved_matter_within_the_window_is_reopened(engine):
    first, _ = ana_on_both(engine)
    with engine.begin() as conn:
        conn.execute(update(conv_t).where(conv_t.c.id == first.conversation_id).values(status="resolved", resolved_at=utcnow()))
    r = ingest(engine, tg("bot:4242:2", "it has not arrived after all"))
    assert r.conversation_id == first.conversation_id
    with engine.connect() as conn:
        assert conn.execute(conv_t.select().where(conv_t.c.id == first.conversation_id)).first().status == "open"


def test_continuity_off_and_hints_that_lead_nowhere(engine):
    first, _ = ana_on_both(engine)
    off = ingest(engine, tg("bot:4242:2", "hello"), policy=IngestPolicy(continuity_window=None))
    assert off.conversation_id != first.conversation_id
    with engine.begin() as conn:
        conn.execute(update(conv_t).where(conv_t.c.id == off.conversation_id).values(status="closed"))
    # a reply to a mail we do not hold, a conversation number that is not hers: they point elsewhere
    stray = ingest(engine, InboundMessage("webform", "f-1", Sender("ana@example.com", "Ana"), "about [#999]",
                                          subject="Re: [#999]"))
    assert stray.conversation_id != first.conversation_id


def test_a_stranger_never_continues_anyones_matter(engine):
    first, _ = ana_on_both(engine)
    # someone else on Telegram naming Ana's order: a new customer, a new conversation
    stranger = ingest(engine, tg("bot:999:1", "Where is SO-1001?", user="999"))
    assert stranger.customer_id != first.customer_id and stranger.conversation_id != first.conversation_id
    # a spoofed From is Ana's address: threading never made it hers beyond what it already was,
    # and the automatic answers decide on it separately (tests/scm/test_privacy_rule.py)


def test_references_are_read_in_linear_time_and_normalised():
    assert references_in("Order SO-1001 and #10023, A1001; not 2024 or 3 kettles") == {"so1001", "10023", "a1001"}
    # pathological input: the scan reads a bounded prefix, once
    assert references_in("SO-" * 200_000 + "1" * 100_000) == set()
