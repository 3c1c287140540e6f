"""SLA timers on a real store (SQLite and PostgreSQL), driven with a controlled clock: the policy
chosen, due times in business hours, first response and resolve stopping timers, reopening, and
warnings / breaches fired exactly once (also across a restart and with escalation on breach)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from hub.auth.accounts import create_agent
from hub.config.settings import SlaSettings
from hub.contract import clock
from hub.contract.messages import InboundMessage, Sender
from hub.contract.principal import Principal
from hub.conversations.actions import update_conversation
from hub.conversations.replies import reply
from hub.ingest.pipeline import ingest
from hub.runtime.pacing import Pacer, Stopped
from hub.sla import timers as sla
from hub.store.models import Conversation, Customer, Escalation, Message, SlaEvent, utcnow

BERLIN = ZoneInfo("Europe/Berlin")
conv_t, customer_t, message_t = Conversation.__table__, Customer.__table__, Message.__table__
# A Tuesday; the tests hand the worker instants from here on.
T0 = datetime(2026, 6, 9, 10, 0, tzinfo=BERLIN)
H = timedelta(hours=1)
# The store's clock stands after every instant the tests hand the worker, so that what they write
# (replies, status changes) is never behind the worker's watermark, whatever day the suite runs on.
STORE_TIME = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def store_clock():
    with clock.use(clock.FixedClock(STORE_TIME)) as fixed:
        yield fixed


def rules(**kw) -> sla.Rules:
    kw.setdefault("assignment", "off")
    settings = SlaSettings(calendars={"default": SlaSettings.Calendar(timezone="Europe/Berlin")}, **kw)
    return sla.build_rules(settings, escalation_target=kw.get("escalate_on_breach") and "email" or None)


def open_conversation(engine, text="Where is my order?", *, at=T0, address="ana@example.com") -> int:
    result = ingest(engine, InboundMessage(channel="email", external_id=f"<{text}-{address}@x>",
                                           sender=Sender(address, "Ana"), text=text, subject=text))
    with engine.begin() as conn:
        conn.execute(update(conv_t).where(conv_t.c.id == result.conversation_id)
                     .values(created_at=at, last_message_at=at))
    return result.conversation_id


def conv(engine, cid):
    with engine.connect() as conn:
        return conn.execute(select(conv_t).where(conv_t.c.id == cid)).one()


def system_texts(engine, cid) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(message_t.c.text).where(message_t.c.conversation_id == cid,
                                                                message_t.c.direction == "system")
                                 .order_by(message_t.c.id)).scalars())


def agent(engine, role="admin"):
    aid = create_agent(engine, f"{role}@example.com", "a long password", role=role, name=role.title())
    return Principal("agent", aid, role, role.title())


def test_due_times_follow_policy_priority_and_first_response(engine):
    r = rules()
    cid = open_conversation(engine)
    sla.run_pass(engine, r, now=T0)
    c = conv(engine, cid)
    assert c.sla_policy == "normal"
    assert c.first_response_due_at == datetime(2026, 6, 9, 14, 0, tzinfo=BERLIN)  # 4 business hours
    assert c.resolution_due_at == datetime(2026, 6, 12, 10, 0, tzinfo=BERLIN)  # 24 = three 8-hour days
    assert c.sla_due_at == c.first_response_due_at

    who = agent(engine)
    update_conversation(engine, cid, {"priority": "urgent"}, who)
    sla.run_pass(engine, r, now=T0 + 0.5 * H)
    c = conv(engine, cid)
    assert (c.sla_policy, c.first_response_due_at, c.resolution_due_at) == (
        "urgent", datetime(2026, 6, 9, 11, 0, tzinfo=BERLIN), datetime(2026, 6, 9, 14, 0, tzinfo=BERLIN))

    reply(engine, cid, who, "On its way.")  # first response: that timer stops
    with engine.begin() as conn:  # the reply happened on the test's clock
        conn.execute(update(conv_t).where(conv_t.c.id == cid).values(first_response_at=T0 + 0.6 * H))
    sla.run_pass(engine, r, now=T0 + 0.6 * H)
    c = conv(engine, cid)
    assert c.status == "pending" and c.sla_due_at == c.resolution_due_at  # pending does not pause

    update_conversation(engine, cid, {"status": "resolved"}, who)
    sla.run_pass(engine, r, now=T0 + H)
    assert conv(engine, cid).sla_due_at is None
    view = sla.conversation_timers(engine, cid, r, now=T0 + H)
    assert view["first_response"]["met"] is True and view["resolution"]["running"] is False


def test_key_customers_get_the_strictest_matching_policy(engine):
    r = rules()
    cid = open_conversation(engine)
    with engine.begin() as conn:
        conn.execute(update(customer_t).values(segment="key", updated_at=utcnow()))
    sla.run_pass(engine, r, now=T0)
    c = conv(engine, cid)
    assert c.sla_policy == "key customer" and c.resolution_due_at == datetime(2026, 6, 10, 10, 0, tzinfo=BERLIN)
    # key (8h) vs urgent (4h): the urgent policy is stricter and wins.
    assert r.policy_for("urgent", "key").name == "urgent"


def test_warning_then_breach_fire_once_even_after_a_restart(engine):
    r = rules()
    cid = open_conversation(engine)
    sla.run_pass(engine, r, now=T0)
    assert system_texts(engine, cid) == []
    # 80% of 4 business hours: 13:12.
    counts = sla.run_pass(engine, r, now=datetime(2026, 6, 9, 13, 15, tzinfo=BERLIN))
    assert counts["fired"] == 1
    assert sla.run_pass(engine, r, now=datetime(2026, 6, 9, 13, 20, tzinfo=BERLIN))["fired"] == 0
    late = datetime(2026, 6, 9, 14, 5, tzinfo=BERLIN)
    assert sla.run_pass(engine, r, now=late)["fired"] == 1
    assert sla.run_pass(engine, rules(), now=late + H)["fired"] == 0  # "restart": fresh rules, same store
    texts = system_texts(engine, cid)
    assert len(texts) == 2 and texts[0].startswith("SLA warning") and texts[1].startswith("SLA breached")
    view = sla.conversation_timers(engine, cid, r, now=late)
    assert view["first_response"]["breached"] and view["first_response"]["remaining_business_seconds"] == -300
    assert [(e["timer"], e["stage"]) for e in view["events"]] == [("first_response", "warning"), ("first_response", "breach")]


def test_breach_escalates_when_configured(engine):
    r = rules(escalate_on_breach=True)
    assert r.escalation_target == "email"
    cid = open_conversation(engine)
    sla.run_pass(engine, r, now=T0)
    sla.run_pass(engine, r, now=T0 + 5 * H)
    sla.run_pass(engine, r, now=T0 + 6 * H)
    with engine.connect() as conn:
        rows = conn.execute(select(Escalation.__table__).where(Escalation.__table__.c.conversation_id == cid)).all()
    assert len(rows) == 1 and rows[0].created_by == "rule:sla_breach"


def test_reopened_conversation_starts_a_new_resolution_cycle(engine):
    r = rules()
    cid = open_conversation(engine)
    who = agent(engine)
    sla.run_pass(engine, r, now=T0)
    update_conversation(engine, cid, {"status": "resolved"}, who)
    sla.run_pass(engine, r, now=T0 + H)
    assert conv(engine, cid).sla_due_at is None
    reopened_at = datetime(2026, 6, 15, 9, 0, tzinfo=BERLIN)  # the next Monday
    with engine.begin() as conn:
        conn.execute(update(conv_t).where(conv_t.c.id == cid).values(status="open", resolved_at=None, updated_at=reopened_at))
    # A change written with an old timestamp is found by a pass whose watermark is older still.
    sla.save_state(engine, *sla.STATE, {"at": (reopened_at - H).isoformat()})
    sla.run_pass(engine, r, now=reopened_at)
    c = conv(engine, cid)
    assert c.resolution_due_at == datetime(2026, 6, 17, 17, 0, tzinfo=BERLIN)  # Mon, Tue, Wed 9-17
    with engine.connect() as conn:  # never answered: the first response is overdue; resolution is not
        fired = conn.execute(select(SlaEvent.__table__.c.timer, SlaEvent.__table__.c.stage)).all()
    assert [tuple(f) for f in fired] == [("first_response", "breach")]


def test_a_stopping_worker_ends_its_pass_during_a_pause_and_keeps_the_watermark(engine):
    """During an ingest burst the pass pauses between batches in its thread; at shutdown it must not
    sleep those pauses off (the process waits for its threads), nor move the watermark past the
    conversations it did not reach."""
    class Burst:  # ingest far above the pacer's threshold: every pause is as long as it gets
        def per_second(self) -> float:
            return 1e9

    r = rules()
    cids = [open_conversation(engine, f"question {i}", address=f"c{i}@example.com") for i in range(3)]
    pacer = Pacer(Burst(), share=1e-9)
    raised: list[BaseException] = []

    def work():
        try:
            sla.run_pass(engine, r, now=T0 + H, batch=1, pacer=pacer)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            raised.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    try:
        started = time.monotonic()
        while conv(engine, cids[0]).sla_due_at is None and time.monotonic() - started < 600:
            time.sleep(0.05)
        assert conv(engine, cids[0]).sla_due_at is not None  # the first batch is done; the pause began
    finally:
        pacer.stop()
        thread.join(timeout=120)  # the pause alone would last days
    assert not thread.is_alive()
    assert [type(e) for e in raised] == [Stopped]
    assert sla.load_state(engine, *sla.STATE) is None
    assert conv(engine, cids[2]).sla_due_at is None
    sla.run_pass(engine, r, now=T0 + H)  # the next pass finds the rest
    assert all(conv(engine, c).sla_due_at is not None for c in cids)
