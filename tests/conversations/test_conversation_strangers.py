"""Nobody joins a stranger's conversation, on SQLite and PostgreSQL: forged or guessed Message-IDs,
a conversation number in the subject or the plus address, and a real id in the wrong hands all
leave the sender in a conversation of their own; a colleague on Cc still joins. Whoever wrote
last, replies and automatic answers go to the conversation's customer, and order facts are
checked against the person who asked. The attacks are also made over real SMTP against the
running hub, and the inbox shows the agent who wrote from where and to whom the reply goes."""

from __future__ import annotations

import dataclasses
import email.policy
import hashlib
import os
import secrets
import stat
from email.message import EmailMessage
from email.utils import formatdate

import pytest
from sqlalchemy import select, update

from hub.config.settings import SmtpReceiverSettings, SmtpSenderSettings
from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.contract.principal import Principal
from hub.contract.signing import IdKind, classify, derive_key, load_or_create_secret, message_id_key, sign_message_id
from hub.conversations.queries import require_conversation
from hub.conversations.replies import queue_outbound, reply, reply_recipient
from hub.ingest.pipeline import IngestPolicy, ingest
from hub.scm.autoanswer import RoutingWorker
from hub.store.db import read_tx
from hub.store.models import Message, Outbox
from tests.support.email import customer_mx, reply_and_receive, running_hub, smtp_send, with_email
from tests.support.inbox import sign_in
from tests.support.scm import automatic_answers, policy
from tests.support.store import rows
from tests.support.waiting import wait_until

message_t = Message.__table__
outbox_t = Outbox.__table__

KEY = b"installation key".ljust(32, b".")
POLICY = IngestPolicy(message_id_key=KEY)
DOMAIN = "shop.example"
SUPPORT = f"support@{DOMAIN}"
ANA, BOB, MALLORY = "ana@example.com", "bob@partner.example", "mallory@evil.example"
API = Principal("token", 1, "integration", "integration")


def mail_in(ext: str, sender: str, *, subject="Where is my order 1234?", refs=(), to=(SUPPORT,), cc=(), conversation=None,
            text="Hello, my order 1234 has not arrived.", name=None) -> InboundMessage:
    """An email as channels/email/parse.py hands it over: To and Cc in the metadata."""
    return InboundMessage(
        "email", ext, Sender(sender, name), text, subject=subject,
        thread=ThreadHints(in_reply_to=tuple(refs), conversation_id=conversation),
        metadata={"to": list(to), "cc": list(cc)},
    )


def our_reply(engine, conversation_id: int, text: str = "It ships today.", *, external_id=None) -> str:
    """A reply as the outbox leaves it once sent: the outbound message under the Message-ID the
    email channel gave it (signed, unless `external_id` says what an older hub sent)."""
    with engine.begin() as conn:
        mid = queue_outbound(conn, require_conversation(conn, conversation_id), text)
        sent_as = external_id or sign_message_id(KEY, conversation_id=conversation_id, seed=f"message:{mid}", domain=DOMAIN)
        conn.execute(update(message_t).where(message_t.c.id == mid).values(external_id=sent_as))
    return sent_as


def old_way(conversation_id: int, message_id: int, recipient: str) -> str:
    """The Message-ID the hub computed before ids were signed: anyone who knows (or guesses) the
    numbers and the customer's address can compute it."""
    seed = f"message:{message_id}|{conversation_id}|{recipient}|{DOMAIN}"
    return f"<servicehub.{conversation_id}.{message_id}.{hashlib.sha256(seed.encode()).hexdigest()[:20]}@{DOMAIN}>"


def forged(conversation_id: int) -> str:
    """An id of our signed shape with a MAC made up (the secret is not known)."""
    return sign_message_id(secrets.token_bytes(32), conversation_id=conversation_id, seed="guess", domain=DOMAIN)


def messages_of(engine, conversation_id: int) -> list:
    with read_tx(engine) as conn:
        return conn.execute(select(message_t).where(message_t.c.conversation_id == conversation_id).order_by(message_t.c.id)).all()


def fifty_candidates(victim: str, conversations: range) -> list[str]:
    """What an attacker lists in References: forged signed ids and ids computed the old way."""
    ids = [forged(c) for c in conversations]
    ids += [old_way(c, m, victim) for c in conversations for m in range(1, 6)]
    return ids[:50]


# --- the signed ids ----------------------------------------------------------------------------


def test_signed_ids_verify_only_under_the_installation_key():
    ours = sign_message_id(KEY, conversation_id=12, seed="message:34", domain=DOMAIN)
    assert ours == sign_message_id(KEY, conversation_id=12, seed="message:34", domain=DOMAIN)  # a retry: the same id
    assert classify(KEY, ours) is IdKind.signed
    assert classify(KEY, ours.replace(DOMAIN, "new-name.example")) is IdKind.signed  # a renamed domain keeps threads
    assert classify(b"another installation".ljust(32), ours) is IdKind.forged
    assert classify(None, ours) is IdKind.forged
    # Another conversation's number under the same MAC, or a changed tag: forged.
    local, _, domain = ours[1:-1].partition("@")
    prefix, conversation, tag, mac = local.split(".")
    assert classify(KEY, f"<{prefix}.13.{tag}.{mac}@{domain}>") is IdKind.forged
    assert classify(KEY, f"<{prefix}.{conversation}.{'a' * 8}.{mac}@{domain}>") is IdKind.forged
    assert classify(KEY, forged(12)) is IdKind.forged
    assert classify(KEY, old_way(12, 34, ANA)) is IdKind.legacy
    assert classify(KEY, "<CAH1x2y3@mail.gmail.com>") is IdKind.foreign
    assert classify(KEY, "<servicehub.something.else@gmail.com>") is IdKind.foreign


def test_the_installation_secret_is_made_once_and_kept_private(tmp_path):
    first = message_id_key(tmp_path / "data")
    assert message_id_key(tmp_path / "data") == first
    path = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    secret = load_or_create_secret(path)
    # Each use has its own key: the form tokens' secret is not the Message-IDs' key.
    assert first == derive_key(secret, "email message-id v2") and first != secret
    assert derive_key(secret, "another use") != first


# --- headers -------------------------------------------------------------------------------------


def next_message_id(engine) -> int:
    with read_tx(engine) as conn:
        return (conn.execute(select(message_t.c.id).order_by(message_t.c.id.desc())).scalars().first() or 0) + 1


def test_forged_references_with_fifty_candidate_ids_start_their_own_conversation(engine):
    ana = ingest(engine, mail_in("<ana-1@example.com>", ANA), policy=POLICY)
    # One reply from before ids were signed, one since.
    legacy = our_reply(engine, ana.conversation_id, external_id=old_way(ana.conversation_id, next_message_id(engine), ANA))
    real = our_reply(engine, ana.conversation_id)
    attack = fifty_candidates(ANA, range(1, 11))
    assert real not in attack and legacy in attack and len(attack) == 50
    mallory = ingest(engine, mail_in("<m-1@evil.example>", MALLORY, subject="Re: Where is my order 1234?", refs=attack),
                     policy=POLICY)
    assert mallory.conversation_id != ana.conversation_id
    assert len(messages_of(engine, ana.conversation_id)) == 3
    # Ana's own answer to the real id still threads.
    again = ingest(engine, mail_in("<ana-2@example.com>", ANA, refs=[real]), policy=POLICY)
    assert again.conversation_id == ana.conversation_id


def test_an_id_guessed_the_old_way_does_not_let_a_stranger_in_but_still_threads_the_customer(engine):
    ana = ingest(engine, mail_in("<ana-1@example.com>", ANA), policy=POLICY)
    # A reply sent before ids were signed: in Ana's mailbox, and computable by anyone.
    next_id = next_message_id(engine)
    legacy = our_reply(engine, ana.conversation_id, external_id=old_way(ana.conversation_id, next_id, ANA))
    guessed = old_way(ana.conversation_id, next_id, ANA)
    assert guessed == legacy  # the attacker got it exactly right
    mallory = ingest(engine, mail_in("<m-1@evil.example>", MALLORY, refs=[guessed]), policy=POLICY)
    assert mallory.conversation_id != ana.conversation_id
    # The store is the proof we sent it: Ana answering that older mail lands where it belongs.
    answer = ingest(engine, mail_in("<ana-2@example.com>", ANA, refs=[legacy]), policy=POLICY)
    assert answer.conversation_id == ana.conversation_id


def test_an_id_guessed_the_old_way_for_a_signed_reply_matches_nothing(engine):
    ana = ingest(engine, mail_in("<ana-1@example.com>", ANA), policy=POLICY)
    our_reply(engine, ana.conversation_id)
    with read_tx(engine) as conn:
        mid = conn.execute(select(message_t.c.id).where(message_t.c.direction == "outbound")).scalar_one()
    # Even from Ana's own address (a forged From): the id is not one we gave out.
    spoof = ingest(engine, mail_in("<s-1@evil.example>", ANA, subject="new", refs=[old_way(ana.conversation_id, mid, ANA)]),
                   policy=POLICY)
    assert spoof.conversation_id != ana.conversation_id


def test_our_real_id_in_a_strangers_hands_does_not_let_them_in(engine):
    """Ana forwarded our reply to someone: holding the id is not having been a recipient."""
    ana = ingest(engine, mail_in("<ana-1@example.com>", ANA), policy=POLICY)
    real = our_reply(engine, ana.conversation_id)
    other = ingest(engine, mail_in("<o-1@elsewhere.example>", MALLORY, refs=[real, "<ana-1@example.com>"]), policy=POLICY)
    assert other.conversation_id != ana.conversation_id


# --- conversation numbers: [#id] and support+c<id>@ --------------------------------------------------


def test_a_stranger_naming_the_conversation_by_subject_token_or_plus_address_starts_their_own(engine):
    ana = ingest(engine, mail_in("<ana-1@example.com>", ANA), policy=POLICY)
    cid = ana.conversation_id
    by_token = ingest(engine, mail_in("<m-1@evil.example>", MALLORY, subject=f"Re: Where is my order 1234? [#{cid}]"),
                      policy=POLICY)
    by_plus = ingest(engine, mail_in("<m-2@evil.example>", MALLORY, to=(f"support+c{cid}@{DOMAIN}",), conversation=cid),
                     policy=POLICY)
    assert cid not in (by_token.conversation_id, by_plus.conversation_id)
    assert len(messages_of(engine, cid)) == 1
    # The same from Ana herself threads as ever.
    assert ingest(engine, mail_in("<ana-2@example.com>", ANA, subject=f"Re: x [#{cid}]"), policy=POLICY).conversation_id == cid
    assert ingest(engine, mail_in("<ana-3@example.com>", ANA, conversation=cid), policy=POLICY).conversation_id == cid


def test_a_colleague_on_cc_joins_by_headers_subject_token_and_plus_address(engine):
    ana = ingest(engine, mail_in("<ana-1@example.com>", ANA, cc=(BOB.upper(),)), policy=POLICY)
    cid = ana.conversation_id
    by_headers = ingest(engine, mail_in("<bob-1@partner.example>", BOB, refs=["<ana-1@example.com>"]), policy=POLICY)
    by_token = ingest(engine, mail_in("<bob-2@partner.example>", BOB, subject=f"Re: order [#{cid}]"), policy=POLICY)
    by_plus = ingest(engine, mail_in("<bob-3@partner.example>", BOB, conversation=cid), policy=POLICY)
    assert by_headers.conversation_id == by_token.conversation_id == by_plus.conversation_id == cid
    assert by_headers.customer_id != ana.customer_id  # Bob stays his own customer
    # Naming Ana's mail among forged candidates changes nothing for him either.
    mixed = ingest(engine, mail_in("<bob-4@partner.example>", BOB, refs=[*fifty_candidates(ANA, range(1, 3))[:49],
                                                                        "<ana-1@example.com>"]), policy=POLICY)
    assert mixed.conversation_id == cid


def test_a_stranger_naming_both_their_own_and_the_victims_mail_stays_in_their_own(engine):
    ana = ingest(engine, mail_in("<ana-1@example.com>", ANA), policy=POLICY)
    mine = ingest(engine, mail_in("<m-1@evil.example>", MALLORY), policy=POLICY)
    ana_reply = our_reply(engine, ana.conversation_id)  # newer than Mallory's mail
    follow_up = ingest(engine, mail_in("<m-2@evil.example>", MALLORY, refs=[ana_reply, "<ana-1@example.com>", "<m-1@evil.example>"]),
                       policy=POLICY)
    assert follow_up.conversation_id == mine.conversation_id


# --- where replies go ------------------------------------------------------------------------------


def test_a_reply_goes_to_the_customer_not_to_whoever_wrote_last(engine):
    ana = ingest(engine, mail_in("<ana-1@example.com>", ANA, cc=(BOB,)), policy=POLICY)
    ingest(engine, mail_in("<bob-1@partner.example>", BOB, refs=["<ana-1@example.com>"]), policy=POLICY)
    assert reply_recipient(engine, ana.conversation_id) == {"channel": "email", "address": ANA, "name": None, "error": None}
    sent = reply(engine, ana.conversation_id, API, "We are on it.")
    with read_tx(engine) as conn:
        payload = conn.execute(select(outbox_t.c.payload).where(outbox_t.c.message_id == sent["id"])).scalar_one()
        meta = conn.execute(select(message_t.c.metadata).where(message_t.c.id == sent["id"])).scalar_one()
    assert payload["recipient"] == ANA and meta["to"] == [ANA]
    # It answers Ana's mail, and still names Bob's so that both clients file it in the thread.
    assert payload["reply_to"] == ["<ana-1@example.com>", "<bob-1@partner.example>"]


def test_with_no_address_of_its_own_customer_a_reply_is_refused_not_sent_elsewhere(engine):
    ana = ingest(engine, mail_in("<ana-1@example.com>", ANA, cc=(BOB,)), policy=POLICY)
    bob = ingest(engine, mail_in("<bob-1@partner.example>", BOB, refs=["<ana-1@example.com>"]), policy=POLICY)
    from hub.store.models import Identity

    identity_t = Identity.__table__
    with engine.begin() as conn:  # Ana's only address moved to another customer (Bob's, say)
        conn.execute(update(identity_t).where(identity_t.c.address == ANA).values(customer_id=bob.customer_id))
    where = reply_recipient(engine, ana.conversation_id)
    assert where["address"] is None and "no message from its customer" in where["error"]


# --- automatic answers and the privacy rule ----------------------------------------------------------

CHLOE = "chloe.martin@example.com"  # owns SO-4711 in the demo SCM data
ANA_SILVA = "ana.silva@example.com"  # owns A1001


def verified_mail(ext, sender, text, **kw) -> InboundMessage:
    """From an address the channel verified as the sender's own (the privacy rule needs one)."""
    return dataclasses.replace(mail_in(ext, sender, text=text, **kw), verified_identities=(Sender(sender, kind="email"),))


async def test_a_colleague_asking_about_the_customers_order_is_told_nothing(engine, services):
    chloe = ingest(engine, verified_mail("<c-1@x>", CHLOE, "Hello", subject="Delivery", cc=(BOB,)), policy=POLICY)
    ingest(engine, mail_in("<b-1@x>", BOB, subject="Re: Delivery", text="Where is order SO-4711?", refs=["<c-1@x>"]),
           policy=POLICY)
    await RoutingWorker(engine, services, policy()).run_once()
    assert automatic_answers(engine) == []
    from hub.store.models import ScmFact

    [fact] = rows(engine, ScmFact.__table__)
    assert fact.subject == "SO-4711" and not fact.disclosed
    assert [m.direction for m in messages_of(engine, chloe.conversation_id)] == ["inbound", "inbound"]


async def test_a_question_about_the_askers_own_order_in_someone_elses_conversation_is_not_answered_to_them(engine, services):
    """Ana (verified, owns A1001) on Cc of Chloé's mail asks about her order: the answer would go to
    Chloé, so it is not sent, and the draft discloses nothing Chloé may not see."""
    chloe = ingest(engine, verified_mail("<c-1@x>", CHLOE, "Hello", subject="Delivery", cc=(ANA_SILVA,)), policy=POLICY)
    ingest(engine, verified_mail("<a-1@x>", ANA_SILVA, "Where is my order A1001?", subject="Re: Delivery", refs=["<c-1@x>"]),
           policy=POLICY)
    await RoutingWorker(engine, services, policy()).run_once()
    assert automatic_answers(engine) == []
    from hub.store.models import ReplyDraft, ScmFact

    [fact] = rows(engine, ScmFact.__table__)
    assert fact.subject == "A1001" and not fact.disclosed
    [draft] = rows(engine, ReplyDraft.__table__)
    assert draft.conversation_id == chloe.conversation_id and "A1001" in draft.text and "shipped" not in draft.text


async def test_the_automatic_answer_goes_to_the_customer_even_when_a_colleague_wrote_after(engine, services):
    chloe = ingest(engine, verified_mail("<c-1@x>", CHLOE, "Where is my order SO-4711?", subject="Order SO-4711", cc=(BOB,)),
                   policy=POLICY)
    ingest(engine, mail_in("<b-1@x>", BOB, subject="Re: Order SO-4711", text="Thanks, following.", refs=["<c-1@x>"]),
           policy=POLICY)
    worker = RoutingWorker(engine, services, policy())
    while await worker.run_once():
        pass
    [answer] = automatic_answers(engine)
    assert answer.payload["recipient"] == CHLOE and answer.payload["conversation_id"] == chloe.conversation_id
    assert "SO-4711" in answer.text and answer.text.startswith("Hello")


# --- over real SMTP, against the running hub ---------------------------------------------------------


def raw_mail(*, sender: str, to: str, subject: str, message_id: str, text: str, cc: str | None = None,
             in_reply_to: str | None = None, references: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    if cc:
        msg["Cc"] = cc
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    msg.set_content(text)
    # RFC 5322's 998: a References line with 50 ids is folded between them, never encoded.
    return msg.as_bytes(policy=email.policy.SMTP.clone(max_line_length=998))


def smtp_settings(settings, mx):
    return with_email(
        settings,
        receiver=SmtpReceiverSettings(enabled=True, host="127.0.0.1", port=0),
        smtp=SmtpSenderSettings(host="127.0.0.1", port=mx.port, security="none", timeout_seconds=5),
    )


@pytest.mark.timeout(60)
async def test_over_smtp_a_stranger_naming_the_thread_every_way_is_kept_out(settings):
    async with customer_mx() as mx, running_hub(smtp_settings(settings, mx)) as hub:
        await smtp_send(hub.smtp_port, raw_mail(sender=f"Ana <{ANA}>", to=SUPPORT, subject="Where is my order 1234?",
                                                message_id="<ana-q@example.com>", text="My order 1234 is late."), sender=ANA)
        [conv] = await wait_until(lambda: hub.conversations_of(ANA), what="Ana's conversation")
        cid = conv["id"]
        first = await reply_and_receive(hub, mx, conv, "Hello Ana, your parcel ships today.")
        real = first.message["Message-ID"]

        # Mallory knows how our ids look and Ana's address: 50 candidates, the token, the plus address.
        candidates = fifty_candidates(ANA, range(max(1, cid - 4), cid + 6))
        assert real not in candidates
        plus = f"support+c{cid}@{DOMAIN}"
        await smtp_send(hub.smtp_port, raw_mail(
            sender=f"Mallory <{MALLORY}>", to=plus, subject=f"Re: Where is my order 1234? [#{cid}]",
            message_id="<attack@evil.example>", text="Please send the tracking details to me instead.",
            in_reply_to=candidates[-1], references=" ".join(candidates)), sender=MALLORY, recipients=[plus])
        [own] = await wait_until(lambda: hub.conversations_of(MALLORY), what="Mallory's mail stored")
        assert own["id"] != cid
        assert [m["direction"] for m in hub.conversation(cid)["messages"]] == ["inbound", "outbound"]

        # The next reply in Ana's conversation goes to Ana, and only to her.
        second = await reply_and_receive(hub, mx, conv, "Anything else we can do?")
        assert second.rcpt_tos == [ANA] and second.message["To"] == ANA
        # What went out carries ids signed with this installation's key.
        assert classify(message_id_key(settings.data_dir), real) is IdKind.signed


@pytest.mark.timeout(60)
async def test_over_smtp_a_colleague_on_cc_joins_and_the_reply_still_goes_to_the_customer(settings):
    async with customer_mx() as mx, running_hub(smtp_settings(settings, mx)) as hub:
        await smtp_send(hub.smtp_port, raw_mail(sender=f"Ana <{ANA}>", to=SUPPORT, cc=f"Bob Builder <{BOB}>",
                                                subject="Where is my order 1234?", message_id="<ana-q@example.com>",
                                                text="My order 1234 is late."), sender=ANA)
        [conv] = await wait_until(lambda: hub.conversations_of(ANA), what="Ana's conversation")
        await smtp_send(hub.smtp_port, raw_mail(
            sender=f"Bob Builder <{BOB}>", to=SUPPORT, cc=ANA, subject="Re: Where is my order 1234?",
            message_id="<bob-1@partner.example>", text="Same here: we need it by Friday.",
            in_reply_to="<ana-q@example.com>", references="<ana-q@example.com>"), sender=BOB)
        await wait_until(lambda: "<bob-1@partner.example>" in hub.inbound_ids(), what="Bob's mail stored")
        joined = hub.conversation(conv["id"])
        assert [m["sender"]["address"] for m in joined["messages"]] == [ANA, BOB]

        sent = await reply_and_receive(hub, mx, conv, "We will deliver on Thursday.")
        assert sent.rcpt_tos == [ANA] and sent.message["To"] == ANA
        assert sent.message["In-Reply-To"] == "<ana-q@example.com>"

        # The agent sees that Bob wrote from another address, and to whom the reply goes.
        await hub.headers()  # creates the agent
        await sign_in(hub.client, "agent@shop.example", "agent password")
        html = await (await hub.client.get(f"/inbox/c/{conv['id']}")).text()
        assert f"Bob Builder <span class=\"sender-address\">&lt;{BOB}&gt;</span>" in " ".join(html.split())
        assert "other address" in html
        to = html[html.index('id="reply-to"'):html.index("</p>", html.index('id="reply-to"'))]
        assert f'To: <strong class="recipient">{ANA}</strong> by <span class="reply-channel">email</span>' in to
        fragment = await (await hub.client.get(f"/inbox/c/{conv['id']}/timeline")).text()
        assert f"&lt;{BOB}&gt;" in fragment
