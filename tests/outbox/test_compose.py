"""One way to send: every sender of a message to a customer (agents' replies, the hub's own
messages in a conversation, satisfaction surveys, web-form confirmations) queues it with
hub/outbox/compose.py, so every outbox row of kind "message" has the same payload keys; and a row
queued before that, with fewer keys, still delivers."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from channels.log import LogChannel
from channels.webform.confirmation import confirmation
from hub.auth.accounts import create_agent
from hub.config.settings import Settings
from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.contract.principal import Principal
from hub.conversations.queries import get_conversation, require_conversation
from hub.conversations.replies import queue_outbound, reply
from hub.csat import surveys
from hub.gateway.registry import ChannelRegistry
from hub.ingest.pipeline import ingest
from hub.outbox.compose import PAYLOAD_KEYS, compose_message, queue_message
from hub.outbox.queue import enqueue
from hub.outbox.worker import OutboxWorker
from hub.store.db import write_tx
from hub.store.models import Message, Outbox
from hub.store.workqueue import RetryPolicy

outbox_t = Outbox.__table__
message_t = Message.__table__
AGENT = Principal("agent", 1, "agent", "agent@example.com")
FAST = RetryPolicy(max_attempts=3, base_seconds=0.01, max_seconds=0.02)


@pytest.fixture(autouse=True)
def _agent(engine):
    assert create_agent(engine, "agent@example.com", "a long password") == AGENT.id


def _conversation(engine, n: int = 1) -> int:
    message = InboundMessage("email", f"<q{n}@example.com>", Sender("ana@example.com", "Ana"), "Where is my order?",
                             subject="Order", thread=ThreadHints(thread_key=f"thread-{n}"))
    return ingest(engine, message).conversation_id


def _payloads(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        rows = conn.execute(select(outbox_t.c.idempotency_key, outbox_t.c.payload).where(outbox_t.c.kind == "message")).all()
    return {r.idempotency_key: r.payload for r in rows}


def test_every_sender_writes_the_same_payload_keys(engine):
    agent_reply = reply(engine, _conversation(engine, 1), AGENT, "It ships today.", "<p>It ships <b>today</b>.</p>")
    hub_message = _conversation(engine, 2)
    with write_tx(engine) as conn:
        # What automatic answers and link codes call.
        own = queue_outbound(conn, require_conversation(conn, hub_message), "Your order SO-1 shipped.", metadata={"automatic": True})
    surveyed = _conversation(engine, 3)
    with write_tx(engine) as conn:
        assert surveys.queue_survey(conn, surveyed, settings=Settings(public_url="https://hub.example"), send=True) is not None
    confirmed = _conversation(engine, 4)
    assert queue_message(engine, confirmation(confirmed, "ana@example.com", "sub-1")) == "ana@example.com"

    payloads = _payloads(engine)
    keys = {key: sorted(p) for key, p in payloads.items()}
    assert set(keys) == {f"message:{agent_reply['id']}", f"message:{own}", f"csat-survey:{_survey_id(engine, surveyed)}",
                         "webform-confirmation:sub-1"}
    assert all(k == sorted(PAYLOAD_KEYS) for k in keys.values()), keys
    assert payloads[f"message:{agent_reply['id']}"]["thread_key"] == "thread-1"


def _survey_id(engine, conversation_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(select(surveys.survey_t.c.id).where(surveys.survey_t.c.conversation_id == conversation_id)).scalar_one()


def test_a_repeated_idempotency_key_queues_nothing_and_names_the_first_recipient(engine):
    cid = _conversation(engine)
    assert queue_message(engine, confirmation(cid, "ana@example.com", "sub-9")) == "ana@example.com"
    assert queue_message(engine, confirmation(cid, "someone.else@example.com", "sub-9")) == "ana@example.com"
    with engine.connect() as conn:
        outbound = conn.execute(select(message_t.c.id).where(message_t.c.direction == "outbound")).all()
    assert len(outbound) == 1 and len(_payloads(engine)) == 1


def test_shown_text_keeps_what_is_sent_out_of_the_conversation(engine):
    cid = _conversation(engine)
    with write_tx(engine) as conn:
        queued = compose_message(conn, conversation_id=cid, channel="email", recipient="ana@example.com", text="secret link",
                         html="<a href='https://x/secret'>x</a>", subject="S", shown_text="[link]")
    [stored] = [m for m in get_conversation(engine, cid)["messages"] if m["id"] == queued.message_id]
    assert stored["text"] == "[link]" and stored["html"] is None
    assert _payloads(engine)[f"message:{queued.message_id}"]["text"] == "secret link"


async def test_an_outbox_row_in_the_old_format_still_delivers(engine):
    """Rows queued by the hub before compose_message(): a web-form confirmation without attachments and
    buttons, a reply without buttons. The worker reads them as they are."""
    cid = _conversation(engine)
    old_confirmation = {"conversation_id": cid, "channel": "email", "recipient": "ana@example.com", "text": "Received",
                        "html": None, "subject": "We have received your message", "reply_to": [], "thread_key": None}
    old_reply = {"conversation_id": cid, "channel": "email", "recipient": "ana@example.com", "text": "It ships.",
                 "html": "<p>It ships.</p>", "subject": "Re: Order", "reply_to": ["<q1@example.com>"],
                 "thread_key": "thread-1", "attachments": []}
    with write_tx(engine) as conn:
        enqueue(conn, kind="message", channel="email", payload=old_confirmation, idempotency_key="webform-confirmation:old")
        enqueue(conn, kind="message", channel="email", payload=old_reply, idempotency_key="message:old")
    channel = LogChannel("email")
    registry = ChannelRegistry()
    registry.register(channel)
    worker = OutboxWorker(engine, registry, policy=FAST)
    assert await worker.run_once() == 2
    sent = {m.idempotency_key: m for m in channel.sent}
    assert sent["webform-confirmation:old"].text == "Received" and sent["webform-confirmation:old"].attachments == ()
    assert sent["message:old"].reply_to == ("<q1@example.com>",) and sent["message:old"].buttons == ()
    with engine.connect() as conn:
        assert {r.status for r in conn.execute(select(outbox_t.c.status))} == {"sent"}
