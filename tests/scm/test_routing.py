"""Routing on SQLite and PostgreSQL against the real `sql` back end and its demo SCM database:
order and stock questions get facts, an automatic answer on the customer's own channel or a draft
for the agent; the privacy rule, the confidence threshold, automated mail, a back end that is down,
exactly-once with several workers, demand counting, answers in Chinese."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from adapters.config import SqlSettings
from adapters.demo_scm import seed_demo_scm
from adapters.sql import SqlBackend
from hub.config.settings import ScmSettings
from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.ingest.pipeline import ingest
from hub.outbox.compose import PAYLOAD_KEYS
from hub.scm import wording as answers
from hub.scm.autoanswer import RoutingWorker, claim, conversation_facts, load_questions, record_all, route
from hub.scm.backend import ScmServices
from hub.store.db import make_engine, read_tx, write_tx
from hub.store.models import Customer, DemandCount, Outbox, RoutingAttempt, utcnow
from hub.store.workqueue import RetryPolicy
from tests.support.scm import (
    ANA,
    CHLOE,
    automatic_answers,
    conversation_t,
    draft_t,
    drain,
    fact_t,
    message_t,
    policy,
    telegram,
)
from tests.support.store import rows

outbox_t = Outbox.__table__
attempt_t = RoutingAttempt.__table__
demand_t = DemandCount.__table__
customer_t = Customer.__table__

BEN_TELEGRAM = "48151623"


def email(address, text, *, external_id, verified=False, subject=None, flags=(), name=None, in_reply_to=()):
    return InboundMessage(
        "email", external_id, Sender(address, name), text, subject=subject, flags=flags,
        thread=ThreadHints(in_reply_to=tuple(in_reply_to)),
        verified_identities=(Sender(address, kind="email"),) if verified else (),
    )


# --- the automatic answer -----------------------------------------------------------------------


async def test_order_question_gets_an_automatic_answer_on_its_own_channel(engine, services):
    r = ingest(engine, email(CHLOE, "Hello, where is my order SO-4711? Thanks, Chloé", external_id="<q1@x>",
                             verified=True, name="Chloé Martin", subject="Order SO-4711"))
    worker = RoutingWorker(engine, services, policy())
    assert await worker.run_once() == 1

    [answer] = automatic_answers(engine)
    assert answer.channel == "email" and answer.payload["recipient"] == CHLOE
    assert set(answer.payload) == set(PAYLOAD_KEYS)  # queued through the outbox's compose, like every message
    assert "Order SO-4711 shipped on" in answer.text and "with DHL, tracking 00340434161094042557" in answer.text
    assert "expected" in answer.text and answer.text.startswith("Hello Chloé,")
    assert answer.metadata["automatic"] is True and answer.metadata["intent"] == "order_status"
    assert answer.metadata["question_message_id"] == r.message_id
    [fact] = rows(engine, fact_t)
    assert fact.kind == "order" and fact.subject == "SO-4711" and fact.disclosed and fact.error is None
    assert fact.payload["carrier"] == "DHL" and fact.payload["owner_email"] == CHLOE
    assert answer.metadata["fact_ids"] == [fact.id]
    [question] = rows(engine, message_t, message_t.c.id == r.message_id)
    assert question.routed_at is not None
    [conv] = rows(engine, conversation_t, conversation_t.c.id == r.conversation_id)
    assert conv.intent == "order_status" and conv.status == "pending" and conv.first_response_at is not None
    # Two changes agents see, each counted: the intent, then answered (pending).
    assert conv.version == 3
    assert rows(engine, draft_t) == [] and rows(engine, attempt_t) == []
    # The agent sees it all: the fact, and which answer went out automatically.
    facts = conversation_facts(engine, r.conversation_id)
    assert facts["automatic_answers"][0]["message_id"] == answer.id and facts["facts"][0]["disclosed"] is True


async def test_nothing_is_routed_twice(engine, services):
    ingest(engine, email(CHLOE, "Where is my order SO-4711?", external_id="<q1@x>", verified=True))
    worker = RoutingWorker(engine, services, policy())
    await drain(worker)
    await drain(worker)
    assert len(automatic_answers(engine)) == 1
    assert claim(engine, limit=10, lease_seconds=60) == []


async def test_an_unverified_sender_at_the_orders_address_is_answered_there_only(engine, services):
    # Ana writes from the order's own address, unverified (anyone can type a From): the answer goes
    # by email to that address and nowhere else, so only the address's owner reads it.
    r = ingest(engine, InboundMessage(
        "email", "<a1@x>", Sender(ANA, "Ana Silva"), "Hello, my order A1001 was due on Monday and has not arrived. Where is it?",
        metadata={"reply_to": ["thief@evil.example"]}))
    await drain(RoutingWorker(engine, services, policy()))
    [answer] = automatic_answers(engine)
    assert answer.channel == "email" and answer.payload["recipient"] == ANA and answer.metadata["to_order_address"] is True
    assert "UPS" in answer.text and "1Z999AA10123456784" in answer.text and "colleague" not in answer.text
    [fact] = rows(engine, fact_t)
    assert fact.subject == "A1001" and fact.payload["late"] is True and fact.disclosed is True
    assert rows(engine, draft_t) == []
    [conv] = rows(engine, conversation_t, conversation_t.c.id == r.conversation_id)
    assert conv.status == "pending"


async def test_someone_elses_order_goes_to_the_orders_address_and_the_asker_hears_only_that(engine, services):
    asked = ingest(engine, email("ben.okafor@example.com", "Where is my order SO-4711?", external_id="<b1@x>", verified=True))
    await drain(RoutingWorker(engine, services, policy()))
    to_ben, to_owner = automatic_answers(engine)
    # Ben, on his channel: that it went to the order's address, not which, and no details
    assert to_ben.payload["recipient"] == "ben.okafor@example.com"
    assert "sent the status of order SO-4711 to the email address the order was placed with" in to_ben.text
    assert "DHL" not in to_ben.text and CHLOE not in to_ben.text
    # Chloé, the owner, by email at the order's address, in a conversation of her own
    assert to_owner.channel == "email" and to_owner.payload["recipient"] == CHLOE and "DHL" in to_owner.text
    assert to_owner.payload["conversation_id"] != asked.conversation_id
    [fact] = rows(engine, fact_t)
    assert fact.payload["carrier"] == "DHL" and not fact.disclosed  # the asker was not told; the agent sees it
    # asking again the same day sends the owner nothing more
    ingest(engine, email("ben.okafor@example.com", "Where is SO-4711 now?", external_id="<b2@x>", verified=True))
    await drain(RoutingWorker(engine, services, policy()))
    assert [a.payload["recipient"] for a in automatic_answers(engine)] == ["ben.okafor@example.com", CHLOE, "ben.okafor@example.com"]


async def test_below_the_confidence_threshold_nothing_is_automatic(engine, services):
    ingest(engine, email(CHLOE, "Where is my order SO-4711?", external_id="<q1@x>", verified=True))
    await drain(RoutingWorker(engine, services, policy(auto_answer_min_confidence=1.0)))
    assert automatic_answers(engine) == []
    [draft] = rows(engine, draft_t)
    assert draft.reason == "low_confidence" and "DHL" in draft.text  # the agent may send it as it is
    assert rows(engine, fact_t)[0].disclosed is False


async def test_channel_policy_and_global_switch(engine, services):
    ingest(engine, email(CHLOE, "Where is my order SO-4711?", external_id="<q1@x>", verified=True))
    await drain(RoutingWorker(engine, services, policy(auto_answer_channels=["telegram"])))
    ingest(engine, email(CHLOE, "And where is my order SO-4711 now?", external_id="<q2@x>", verified=True))
    await drain(RoutingWorker(engine, services, policy(auto_answer=False)))
    assert automatic_answers(engine) == []
    assert [d.reason for d in rows(engine, draft_t)] == ["channel_policy", "automatic_answers_off"]
    with pytest.raises(ValueError, match="voice"):
        ScmSettings(auto_answer_channels=["email", "voice"])


async def test_a_phone_call_gets_a_draft_never_an_automatic_answer(engine, services):
    ingest(engine, InboundMessage("voice", "call-1", Sender("+44 20 7946 0958", "Chloé Martin"),
                                  "Customer: Where is my order SO-4711?\nAgent: Let me check.",
                                  verified_identities=(Sender("+44 20 7946 0958", kind="phone"),)))
    await drain(RoutingWorker(engine, services, policy()))
    assert automatic_answers(engine) == []
    [draft] = rows(engine, draft_t)
    assert draft.reason == "channel_policy" and "DHL" in draft.text


@pytest.mark.parametrize("flag", ["auto_reply", "bounce", "bulk", "own_address"])
async def test_automated_mail_is_never_answered(engine, services, flag):
    r = ingest(engine, email(CHLOE, "Where is my order SO-4711? (out of office)", external_id=f"<auto-{flag}@x>",
                             verified=True, flags=(flag,)))
    await drain(RoutingWorker(engine, services, policy()))
    assert automatic_answers(engine) == [] and rows(engine, draft_t) == [] and rows(engine, fact_t) == []
    assert rows(engine, message_t, message_t.c.id == r.message_id)[0].routed_at is not None


async def test_an_old_question_routed_late_gets_a_draft(engine, services):
    r = ingest(engine, email(CHLOE, "Where is my order SO-4711?", external_id="<q1@x>", verified=True))
    with write_tx(engine) as conn:
        conn.execute(update(message_t).where(message_t.c.id == r.message_id).values(created_at=utcnow() - timedelta(hours=5)))
    await drain(RoutingWorker(engine, services, policy()))
    assert automatic_answers(engine) == []
    assert rows(engine, draft_t)[0].reason == "question_too_old"


async def test_an_order_number_in_the_subject_alone_is_enough(engine, services):
    ingest(engine, email(CHLOE, "Hello, where is my order? I am waiting for it.", external_id="<q1@x>",
                         verified=True, subject="Order SO-4711"))
    await drain(RoutingWorker(engine, services, policy()))
    assert "SO-4711" in automatic_answers(engine)[0].text


async def test_no_order_number_drafts_a_question_back(engine, services):
    ingest(engine, email(CHLOE, "Where is my order? It has not arrived yet.", external_id="<q1@x>", verified=True))
    await drain(RoutingWorker(engine, services, policy()))
    assert automatic_answers(engine) == [] and rows(engine, fact_t) == []
    [draft] = rows(engine, draft_t)
    assert draft.reason == "no_order_reference" and "order number" in draft.text


# --- when the back end is down --------------------------------------------------------------------


async def test_back_end_down_shows_the_failure_and_retries_later(engine, tmp_path):
    # The SCM database is not there yet: every question fails until it comes up.
    down_dir = tmp_path / "scm-down"
    down_dir.mkdir()
    url = f"sqlite:///{down_dir / 'scm-demo.db'}"
    services = ScmServices(SqlBackend(SqlSettings(), url=url))
    try:
        r = ingest(engine, email(CHLOE, "Where is my order SO-4711?", external_id="<q1@x>", verified=True))
        worker = RoutingWorker(engine, services, policy())
        assert await worker.run_once() == 1
        assert automatic_answers(engine) == [] and rows(engine, draft_t) == []
        [fact] = rows(engine, fact_t)
        assert fact.error == "backend_unavailable" and fact.subject == "SO-4711" and fact.error_message
        [question] = rows(engine, message_t, message_t.c.id == r.message_id)
        assert question.routed_at is None  # not lost: still to route
        [attempt] = rows(engine, attempt_t)
        assert attempt.attempts == 1 and attempt.locked_until is None and attempt.last_error
        assert rows(engine, conversation_t, conversation_t.c.id == r.conversation_id)[0].intent == "order_status"
        assert conversation_facts(engine, r.conversation_id)["facts"][0]["error"] == "backend_unavailable"

        seed_demo_scm(down_dir)  # the back end is back
        await asyncio.sleep(0.05)  # past the (test-sized) backoff
        await drain(worker)
        [answer] = automatic_answers(engine)
        assert "DHL" in answer.text
        [fact] = rows(engine, fact_t)  # the failure gave way to the answer
        assert fact.error is None and fact.disclosed
        assert rows(engine, attempt_t) == []
        assert rows(engine, message_t, message_t.c.id == r.message_id)[0].routed_at is not None
    finally:
        await services.close()


async def test_retries_stop_after_the_last_attempt_with_the_failure_kept(engine, tmp_path):
    services = ScmServices(SqlBackend(SqlSettings(), url=f"sqlite:///{tmp_path / 'nothing.db'}"))
    try:
        r = ingest(engine, email(CHLOE, "Where is my order SO-4711?", external_id="<q1@x>", verified=True))
        worker = RoutingWorker(engine, services, policy(routing_max_attempts=2))
        await worker.run_once()
        await asyncio.sleep(0.05)
        await worker.run_once()
        assert rows(engine, message_t, message_t.c.id == r.message_id)[0].routed_at is not None
        assert [f.error for f in rows(engine, fact_t)] == ["backend_unavailable"]
        assert automatic_answers(engine) == []
    finally:
        await services.close()


# --- several workers ------------------------------------------------------------------------------


async def test_several_workers_answer_each_question_exactly_once(db_url, scm_url):
    engines = [make_engine(db_url) for _ in range(3)]
    services = [ScmServices(SqlBackend(SqlSettings(), url=scm_url)) for _ in engines]
    try:
        for i in range(30):
            ingest(engines[0], email(CHLOE, f"Where is my order SO-4711? (asking for the {i}th time)",
                                     external_id=f"<q{i}@x>", verified=True))
        workers = [RoutingWorker(e, s, policy(routing_batch_size=4)) for e, s in zip(engines, services, strict=True)]
        await asyncio.gather(*(drain(w) for w in workers))
        answered = [a.metadata["question_message_id"] for a in automatic_answers(engines[0])]
        assert len(answered) == 30 and len(set(answered)) == 30
        with read_tx(engines[0]) as conn:
            assert conn.execute(select(message_t.c.id).where(message_t.c.direction == "inbound",
                                                             message_t.c.routed_at.is_(None))).all() == []
        assert sum(w.totals["routed"] for w in workers) == 30
    finally:
        for s in services:
            await s.close()
        for e in engines:
            e.dispose()


async def test_a_worker_that_outlived_its_lease_does_not_answer_again(engine, services):
    ingest(engine, email(CHLOE, "Where is my order SO-4711?", external_id="<q1@x>", verified=True))
    scm = policy()
    slow = claim(engine, limit=10, lease_seconds=60)  # worker A claims... and stalls past its lease
    later = utcnow() + timedelta(seconds=61)
    fast = claim(engine, limit=10, lease_seconds=60, now=later)  # worker B takes it over
    assert [m for m, _ in slow] == [m for m, _ in fast] and fast[0][1] == 2
    fast_outcomes = [await route(q, services, scm) for q in load_questions(engine, fast)]
    slow_outcomes = [await route(q, services, scm) for q in load_questions(engine, slow)]
    retry = RetryPolicy()
    assert record_all(engine, fast_outcomes, policy=retry, escalation_target=None)["answered"] == 1
    assert record_all(engine, slow_outcomes, policy=retry, escalation_target=None)["answered"] == 0
    assert len(automatic_answers(engine)) == 1 and len(rows(engine, fact_t)) == 1


# --- stock and demand -------------------------------------------------------------------------------


async def test_stock_question_gets_facts_an_answer_and_is_counted(engine, services):
    r = ingest(engine, telegram(BEN_TELEGRAM, "Hi! Do you have the blue kettle (SKU KET-BLUE) in stock?", external_id="tg-1"))
    await drain(RoutingWorker(engine, services, policy()))
    [answer] = automatic_answers(engine)
    assert answer.channel == "telegram" and answer.payload["recipient"] == BEN_TELEGRAM
    assert "KET-BLUE" in answer.text and "out of stock" in answer.text and "we expect more on" in answer.text
    [fact] = rows(engine, fact_t)
    assert fact.kind == "stock" and fact.disclosed and {lvl["location"] for lvl in fact.payload} == {"Leeds DC", "Rotterdam DC"}
    [count] = rows(engine, demand_t)
    assert (count.sku, count.asked, count.unavailable) == ("KET-BLUE", 1, 1)
    assert count.day == utcnow().date()
    assert rows(engine, conversation_t, conversation_t.c.id == r.conversation_id)[0].intent == "stock"

    ingest(engine, telegram(BEN_TELEGRAM, "Is the steel kettle KET-STEEL in stock?", external_id="tg-2"))
    ingest(engine, telegram(BEN_TELEGRAM, "Do you have KET-BLUE in stock now?", external_id="tg-3"))
    await drain(RoutingWorker(engine, services, policy()))
    counts = {c.sku: (c.asked, c.unavailable) for c in rows(engine, demand_t)}
    assert counts == {"KET-BLUE": (2, 2), "KET-STEEL": (1, 0)}


# --- other languages ------------------------------------------------------------------------------


async def test_a_chinese_question_is_answered_in_chinese(engine, services):
    ingest(engine, email(CHLOE, "你好，我的订单 SO-4711 到哪里了？", external_id="<zh1@x>", verified=True))
    await drain(RoutingWorker(engine, services, policy()))
    [answer] = automatic_answers(engine)
    assert answer.metadata["language"] == "zh"
    assert "订单 SO-4711 已于" in answer.text and "由DHL发货" in answer.text and "运单号 00340434161094042557" in answer.text
    assert "您好" in answer.text and "自动回复" in answer.text


def test_dates_read_like_people_write_them():
    from datetime import date

    today = date(2026, 5, 1)
    assert answers.format_day(date(2026, 5, 3), "en", today=today) == "3 May"
    assert answers.format_day(date(2027, 1, 6), "en", today=today) == "6 January 2027"
    assert answers.format_day(date(2026, 5, 3), "zh", today=today) == "5月3日"


async def test_routing_yields_to_ingest_during_a_burst_only(engine, services):
    now = [100.0]
    worker = RoutingWorker(engine, services, policy(routing_busy_share=0.1, routing_busy_above_per_second=50),
                           clock=lambda: now[0])
    for _ in range(20):  # 10 messages a second: a quiet hub, routed at once
        worker.wake()
    assert worker.pause_after(100.0, 100.5) == 0.0
    for _ in range(400):  # a burst of 200 a second
        worker.wake()
    # 0.5 s of routing in the 2 s window against an allowance of 0.2 s: yield 3 s (0.3 s / 10%).
    assert worker.pause_after(100.0, 100.0) == pytest.approx(3.0)
    now[0] = 103.0  # the burst is over: nothing arrived in the last 2 s
    assert not worker.ingest_busy() and worker.pause_after(103.0, 103.5) == 0.0


async def test_a_thanks_does_not_hide_what_the_conversation_is_about(engine, services):
    ingest(engine, telegram(BEN_TELEGRAM, "Hi! Do you have the blue kettle (SKU KET-BLUE) in stock?", external_id="tg-1"))
    r = ingest(engine, telegram(BEN_TELEGRAM, "Thanks a lot, have a nice day", external_id="tg-2"))
    await drain(RoutingWorker(engine, services, policy()))  # both in one batch
    assert rows(engine, conversation_t, conversation_t.c.id == r.conversation_id)[0].intent == "stock"


async def test_a_thanks_in_reply_is_not_read_as_the_old_question_again(engine, services):
    ingest(engine, email(CHLOE, "Where is my order?", external_id="<q1@x>", verified=True, subject="Order SO-4711"))
    worker = RoutingWorker(engine, services, policy())
    await drain(worker)
    ingest(engine, email(CHLOE, "Thank you very much, that is all I needed!", external_id="<q2@x>", verified=True,
                         subject="Re: Order SO-4711", in_reply_to=["<q1@x>"]))
    await drain(worker)
    assert len(automatic_answers(engine)) == 1  # the question's, not the thanks'
