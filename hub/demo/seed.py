"""Demo data: customers reaching us on several channels, with threaded conversations, an admin
and an integration token. Idempotent: running it again changes nothing (external ids dedupe)."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from adapters.demo_scm import seed_demo_scm
from hub.auth.accounts import create_agent, create_token
from hub.contract import clock
from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.contract.principal import Principal
from hub.conversations.actions import update_conversation
from hub.conversations.replies import reply
from hub.customers.linking import issue_code
from hub.demo.articles import seed_knowledge_base
from hub.demo.history import seed_history
from hub.ingest.pipeline import ingest
from hub.segments.value import mark_key_customer
from hub.store.db import read_tx
from hub.store.models import Agent, utcnow

ADMIN_EMAIL = "admin@example.com"


# When each demo message came in, in minutes before the seeding: from minutes to days ago, so the
# list's waiting times, ages and SLA timers look like a working day's (any day the demo is run).
DAY = 24 * 60


def _messages(now):
    ago = lambda minutes: now - timedelta(minutes=minutes)  # noqa: E731
    return [
        InboundMessage("email", "<demo-1@mail.example>", Sender("ana.silva@example.com", "Ana Silva"),
                       "Hello, my order #A1001 was due on Monday and has not arrived. Can you check where it is?",
                       subject="Where is my order A1001?", sent_at=ago(2 * DAY + 180)),
        InboundMessage("email", "<demo-2@mail.example>", Sender("Ana.Silva@Example.com", "Ana Silva"),
                       "Any news? I need it for the weekend.", subject="Re: Where is my order A1001?",
                       sent_at=ago(300), thread=ThreadHints(in_reply_to=("<demo-1@mail.example>",))),
        InboundMessage("telegram", "demo-tg-1", Sender("48151623", "Ben Okafor"),
                       "Hi! Do you have the blue kettle (SKU KET-BLUE) in stock?", sent_at=ago(190),
                       thread=ThreadHints(thread_key="48151623")),
        InboundMessage("telegram", "demo-tg-2", Sender("48151623", "Ben Okafor"),
                       "And how long is delivery to Lagos?", sent_at=ago(187),
                       thread=ThreadHints(thread_key="48151623")),
        InboundMessage("voice", "demo-call-1", Sender("+44 20 7946 0958", "Chloé Martin"),
                       "Customer: I was charged twice for my last order.\nAgent: I am sorry, let me check that.",
                       subject="Call: double charge", sent_at=ago(300)),
        InboundMessage("webform", "demo-form-1", Sender("dmitri@example.org", "Dmitri Volkov"),
                       "The product page says 'ships in 2 days' but checkout says 2 weeks. Which is right?",
                       subject="Delivery time question", sent_at=ago(20 * 60)),
        InboundMessage("email", "<demo-3@mail.example>", Sender("dmitri@example.org", "Dmitri Volkov"),
                       "Following up on my web form question about delivery times.",
                       subject="Delivery times", sent_at=ago(6 * 60)),
        # Order questions from addresses the channel verified as the sender's own: the privacy
        # rule holds, so routing answers them automatically (in English, and in Chinese on Telegram,
        # where Chloé shared her phone number, which joins her to the customer who called).
        InboundMessage("email", "<demo-4@mail.example>", Sender("chloe.martin@example.com", "Chloé Martin"),
                       "Hello, could you tell me where my order SO-4711 is? Thank you, Chloé",
                       subject="Order SO-4711", sent_at=ago(45),
                       verified_identities=(Sender("chloe.martin@example.com", kind="email"),)),
        InboundMessage("telegram", "demo-tg-3", Sender("27182818", "Chloé Martin"),
                       "你好，我的订单 SO-4711 到哪里了？", sent_at=ago(10),
                       thread=ThreadHints(thread_key="27182818"),
                       verified_identities=(Sender("+44 20 7946 0958", kind="phone"),)),
    ]


def _ana_on_telegram(engine: Engine, customer_id: int, now) -> None:
    """Ana links her Telegram with the code the agent gave her and asks there: the same
    conversation, with the same agent, not a second one."""
    with _at(now - timedelta(minutes=20)):
        code, _ = issue_code(engine, customer_id, actor="demo")
    start = InboundMessage("telegram", "demo-tg-ana-1", Sender("31415926", "Ana Silva"), f"/start {code}",
                           sent_at=now - timedelta(minutes=15), thread=ThreadHints(thread_key="31415926"), link_code=code)
    question = InboundMessage("telegram", "demo-tg-ana-2", Sender("31415926", "Ana Silva"),
                              "Hi, I also wrote by email about my parcel A1001. Any news?", sent_at=now - timedelta(minutes=14),
                              thread=ThreadHints(thread_key="31415926"))
    for msg in (start, question):
        _ingest_at(engine, msg)


@contextlib.contextmanager
def _at(when: datetime) -> Iterator[None]:
    """The hub's clock reads `when` inside the block: the demo's story is written as it happened,
    each message stored, answered and resolved at its own time (the list's waiting times, the SLA
    timers and the timeline read those times, not the moment of seeding). The demo seeds before
    the hub serves, so nothing else reads the clock meanwhile."""
    with clock.use(clock.FixedClock(min(when, clock.now()))):  # never in the future
        yield


def _ingest_at(engine: Engine, msg: InboundMessage):
    with _at(msg.sent_at):
        return ingest(engine, msg)


def seed(engine: Engine, data_dir: Path) -> dict:
    """Seed demo data; returns (and keeps in data_dir/demo-credentials.json) the demo logins."""
    creds_path = data_dir / "demo-credentials.json"
    if creds_path.exists():
        creds = json.loads(creds_path.read_text())
    else:
        creds = {"admin_email": ADMIN_EMAIL, "admin_password": secrets.token_urlsafe(12)}
    with read_tx(engine) as conn:
        admin_id = conn.execute(select(Agent.__table__.c.id).where(Agent.__table__.c.email == ADMIN_EMAIL)).scalar()
    if admin_id is None:
        admin_id = create_agent(engine, ADMIN_EMAIL, creds["admin_password"], role="admin", name="Demo Admin", actor="demo")
    if "api_token" not in creds:
        creds["api_token"] = create_token(engine, "demo integration", role="integration", actor="demo")
    data_dir.mkdir(parents=True, exist_ok=True)
    seed_demo_scm(data_dir)  # the orders and stock the demo's questions ask about
    creds_path.write_text(json.dumps(creds, indent=2))
    creds_path.chmod(0o600)

    now = utcnow()
    messages = _messages(now)
    admin = Principal("agent", admin_id, "admin", ADMIN_EMAIL)
    # Everything up to Chloé's call; her call is resolved before she writes on Telegram.
    results = [_ingest_at(engine, msg) for msg in messages[:-1]]
    # Ana is a key customer: her late order is escalated by the key-customer rule.
    mark_key_customer(engine, "email", "ana.silva@example.com")
    if results[0].created:
        with _at(messages[1].sent_at + timedelta(minutes=50)):
            reply(engine, results[0].conversation_id, admin, "Hi Ana, I am checking with the warehouse and will get back to you today.")
            # One agent has Ana's matter, whichever channel she uses next.
            update_conversation(engine, results[0].conversation_id, {"assignee_id": admin_id}, admin)
        with _at(messages[4].sent_at + timedelta(minutes=12)):
            update_conversation(engine, results[4].conversation_id, {"status": "resolved"}, admin)
        _ana_on_telegram(engine, results[0].customer_id, now)
    # Chloé's chat continues the matter of her call (same customer by her phone): it reopens it.
    _ingest_at(engine, messages[-1])
    seed_knowledge_base(engine)
    seed_history(engine)
    return creds
