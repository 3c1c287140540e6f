"""The privacy rule of automatic answers against hostile askers, on SQLite and PostgreSQL, through
the real email parser, ingest and routing with the demo SCM back end: spoofed From headers, forged
Authentication-Results, a stranger on Telegram naming someone else's order; messages with several
questions; conversations an agent is already answering."""

from __future__ import annotations

from channels.email.parse import parse
from hub.auth.accounts import create_agent
from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.contract.principal import Principal
from hub.conversations.replies import reply
from hub.ingest.pipeline import ingest
from hub.scm.autoanswer import RoutingWorker
from hub.store.models import Identity
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

MX = "mx.shop.example"


def mail(sender: str, text: str, *, ext: str, subject: str = "My order", extra: str = "") -> bytes:
    return (f"From: {sender}\r\nTo: support@shop.example\r\nSubject: {subject}\r\nMessage-ID: {ext}\r\n{extra}"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n").encode()


def store(engine, raw: bytes, authserv: str | None = MX):
    return ingest(engine, parse(raw, own_addresses=("support@shop.example",), trusted_authserv_id=authserv))


def verified(engine, address: str) -> bool:
    t = Identity.__table__
    return bool(rows(engine, t, t.c.address == address)[0].verified)


async def test_a_spoofed_from_with_a_reply_to_never_gets_the_order_elsewhere(engine, services):
    raw = mail(f"Ana Silva <{ANA}>", "Where is my order A1001?", ext="<spoof1@evil.example>",
               extra="Reply-To: thief@evil.example\r\n")
    store(engine, raw)
    await drain(RoutingWorker(engine, services, policy()))
    [answer] = automatic_answers(engine)
    # to the order's own address only: the real Ana reads it, the thief gets nothing
    assert answer.payload["recipient"] == ANA and "thief" not in str(answer.payload)
    assert not verified(engine, ANA)


async def test_authentication_results_of_the_named_server_verify_the_sender(engine, services):
    good = f"Authentication-Results: {MX}; dkim=pass header.d=example.com header.s=s1; dmarc=pass (p=reject) header.from=example.com\r\n"
    store(engine, mail(CHLOE, "Where is my order SO-4711?", ext="<c1@example.com>", extra=good))
    assert verified(engine, CHLOE)
    await drain(RoutingWorker(engine, services, policy()))
    [answer] = automatic_answers(engine)
    assert answer.payload["recipient"] == CHLOE and "DHL" in answer.text
    assert "to_order_address" not in answer.metadata  # verified: answered on her own channel, as it stands


async def test_forged_authentication_results_verify_nothing(engine, services):
    forged = [
        # another server's word
        "Authentication-Results: mx.evil.example; dkim=pass header.d=example.com; dmarc=pass header.from=example.com\r\n",
        # ours, but not aligned with From
        f"Authentication-Results: {MX}; dkim=pass header.d=evil.example; dmarc=pass header.from=evil.example\r\n",
        # ours, failing
        f"Authentication-Results: {MX}; dkim=fail header.d=example.com; dmarc=fail header.from=example.com\r\n",
        # ours on top says fail; a forged pass below it does not count
        f"Authentication-Results: {MX}; dmarc=fail header.from=example.com\r\n"
        f"Authentication-Results: {MX}; dmarc=pass header.from=example.com\r\n",
    ]
    for i, header in enumerate(forged):
        store(engine, mail(CHLOE, "Where is my order SO-4711?", ext=f"<f{i}@evil.example>", extra=header))
        assert not verified(engine, CHLOE), header
    # and with no server named, even a perfect header is not trusted
    store(engine, mail(CHLOE, "hi", ext="<f9@evil.example>", extra=f"Authentication-Results: {MX}; dmarc=pass header.from=example.com\r\n"),
          authserv=None)
    assert not verified(engine, CHLOE)


async def test_a_stranger_on_telegram_naming_someone_elses_order(engine, services):
    r = ingest(engine, telegram("99999", "Where is order SO-4711?", external_id="tg-s1"))
    await drain(RoutingWorker(engine, services, policy()))
    to_stranger, to_owner = automatic_answers(engine)
    assert to_stranger.channel == "telegram" and to_stranger.payload["recipient"] == "99999"
    assert "DHL" not in to_stranger.text and CHLOE not in to_stranger.text and "email address the order was placed with" in to_stranger.text
    assert to_owner.channel == "email" and to_owner.payload["recipient"] == CHLOE and to_owner.payload["conversation_id"] != r.conversation_id
    # a guessed order number that does not exist: told so, nothing sent anywhere else
    ingest(engine, telegram("99999", "And order SO-9999999?", external_id="tg-s2"))
    await drain(RoutingWorker(engine, services, policy()))
    assert len(automatic_answers(engine)) == 2


async def test_a_message_with_two_questions_is_answered_in_part_and_stays_open(engine, services):
    r = ingest(engine, telegram("48151623", "Hi! Is the blue kettle KET-BLUE in stock, and how long does delivery to Lagos take?",
                                external_id="tg-m1"))
    await drain(RoutingWorker(engine, services, policy()))
    [answer] = automatic_answers(engine)
    assert "KET-BLUE" in answer.text and "A colleague will answer your other question" in answer.text
    assert answer.metadata["unanswered"] == ["how long does delivery to Lagos take?"]
    [conv] = rows(engine, conversation_t, conversation_t.c.id == r.conversation_id)
    assert conv.status == "open"  # in the agents' view
    [draft] = rows(engine, draft_t)
    assert draft.reason == "partly_answered" and "delivery to Lagos" in draft.text
    events = [m for m in rows(engine, message_t, message_t.c.direction == "system") if (m.metadata or {}).get("event") == "answer.partial"]
    assert len(events) == 1


async def test_no_automatic_answer_where_an_agent_is_answering(engine, services):
    first = ingest(engine, InboundMessage("email", "<c1@x>", Sender(CHLOE, "Chloé"), "Hello, I have a question about a parcel.",
                                          verified_identities=(Sender(CHLOE, kind="email"),)))
    agent_id = create_agent(engine, "ada@example.com", "a long password", role="agent", name="Ada")
    reply(engine, first.conversation_id, Principal("agent", agent_id, "agent", "ada@example.com"), "Happy to help: which order?")
    await drain(RoutingWorker(engine, services, policy()))
    ingest(engine, InboundMessage("email", "<c2@x>", Sender(CHLOE, "Chloé"), "It is SO-4711, where is it?",
                                  thread=ThreadHints(in_reply_to=("<c1@x>",)), verified_identities=(Sender(CHLOE, kind="email"),)))
    await drain(RoutingWorker(engine, services, policy()))
    assert automatic_answers(engine) == []
    assert rows(engine, draft_t)[-1].reason == "agent_answering"
    assert rows(engine, fact_t)[-1].payload["carrier"] == "DHL"  # the agent has the facts at hand
