"""Replies out by SMTP against a real SMTP server on loopback standing in for the customer's mail
server (aiosmtpd collecting envelopes): the MIME message and its threading headers, TLS and
login, and how the server's answers become the outbox's retry or failure."""

from __future__ import annotations

import asyncio
import email
import email.policy

import pytest

from channels.base import PermanentFailure, TemporaryFailure
from channels.email.sender import SmtpSender, build_message, message_id_for
from hub.config.settings import SmtpSenderSettings
from hub.contract.messages import Attachment, OutboundMessage
from hub.contract.signing import IdKind, classify
from tests.support.email import SUPPORT, customer_mx, mail, running_hub, with_email
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(60)


def outbound(**overrides) -> OutboundMessage:
    values = dict(
        conversation_id=12,
        channel="email",
        recipient="ana@example.com",
        text="Hello Ana,\n\nyour parcel left our warehouse today.\n",
        html="<p>Hello Ana,</p><p>your parcel left our warehouse today.</p>",
        subject="Re: Where is my order 1234? [#12]",
        reply_to=("<second@example.com>", "<first@example.com>"),
        idempotency_key="message:34",
        message_id=34,
    )
    values.update(overrides)
    return OutboundMessage(**values)


KEY = b"k" * 32  # the installation's message-id key (hub/contract/signing.py), fixed for these tests


def sender(port: int, **overrides) -> SmtpSender:
    values = dict(host="127.0.0.1", port=port, security="none", username=None, password=None, timeout_seconds=5,
                  from_address=SUPPORT, from_name="Shop Support", message_id_key=lambda: KEY)
    values.update(overrides)
    return SmtpSender(**values)


# --- the message -------------------------------------------------------------------------


def test_the_reply_threads_in_every_client():
    msg = build_message(outbound(), from_address=SUPPORT, from_name="Shop Support",
                        message_id="<servicehub.12.34.abc@shop.example>", reply_to_address="support+c12@shop.example")
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert parsed["From"] == "Shop Support <support@shop.example>"
    assert parsed["To"] == "ana@example.com"
    assert parsed["Subject"] == "Re: Where is my order 1234? [#12]"
    assert parsed["Message-ID"] == "<servicehub.12.34.abc@shop.example>"
    assert parsed["In-Reply-To"] == "<second@example.com>"  # the newest of the customer's
    assert parsed["References"] == "<first@example.com> <second@example.com>"  # oldest first
    assert parsed["Reply-To"] == "support+c12@shop.example"
    assert parsed["Auto-Submitted"] is None  # a person wrote it
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed.get_body(("plain",)).get_content().startswith("Hello Ana,")
    assert "<p>Hello Ana,</p>" in parsed.get_body(("html",)).get_content()


def test_attachments_and_awkward_headers():
    long_id = "<CAH" + "x" * 120 + "@mail.gmail.com>"
    msg = build_message(
        outbound(html=None, subject="Re: Lieferung \u00fcberf\u00e4llig\r\nBcc: victim@example.com [#12]",
                 reply_to=(long_id,), attachments=(Attachment("label.pdf", "application/pdf", data=b"%PDF-1.4 label"),)),
        from_address=SUPPORT, from_name="Shop Support", message_id="<x@shop.example>", reply_to_address=None,
    )
    raw = msg.as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    # A long id stays an id: RFC 2047-encoding it (the stdlib's default) breaks threading.
    assert f"In-Reply-To: {long_id}".encode() in raw
    assert parsed["Bcc"] is None and "Bcc" in parsed["Subject"]  # no header injection
    assert parsed["Subject"].startswith("Re: Lieferung \u00fcberf\u00e4llig")
    assert parsed.get_content_type() == "multipart/mixed"
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_filename() == "label.pdf" and attachment.get_content() == b"%PDF-1.4 label"


def test_attachments_without_data_fail_instead_of_going_missing():
    with pytest.raises(PermanentFailure, match="label.pdf"):
        build_message(outbound(attachments=(Attachment("label.pdf", "application/pdf", blob_sha256="ab" * 32),)),
                      from_address=SUPPORT, from_name="", message_id="<x@shop.example>", reply_to_address=None)


def test_message_id_is_stable_per_idempotency_key_and_signed():
    a = message_id_for(outbound(), "shop.example", KEY)
    assert a == message_id_for(outbound(text="edited text"), "shop.example", KEY)
    assert a != message_id_for(outbound(idempotency_key="message:35", message_id=35), "shop.example", KEY)
    assert a.startswith("<sh2.12.") and a.endswith("@shop.example>") and len("In-Reply-To: " + a) < 78
    # Another installation's key makes another id: nobody without ours can compute it.
    assert a != message_id_for(outbound(), "shop.example", b"x" * 32)
    assert classify(KEY, a) is IdKind.signed and classify(b"x" * 32, a) is IdKind.forged


# --- talking to a server ----------------------------------------------------------------------


async def test_send_delivers_and_a_retry_resends_the_same_message_id():
    async with customer_mx() as mx:
        delivery = await sender(mx.port).send(outbound())
        again = await sender(mx.port).send(outbound())
    assert delivery.external_id == again.external_id
    first, second = mx.received
    assert first.mail_from == SUPPORT and first.rcpt_tos == ["ana@example.com"]
    assert first.message["Message-ID"] == second.message["Message-ID"] == delivery.external_id


@pytest.mark.parametrize(
    "where, answer, failure",
    [
        ("rcpt", "450 4.2.0 mailbox busy, try later", TemporaryFailure),
        ("rcpt", "550 5.1.1 no such user here", PermanentFailure),
        ("data", "451 4.3.0 local error in processing", TemporaryFailure),
        ("data", "554 5.7.1 rejected as spam", PermanentFailure),
    ],
)
async def test_server_answers_map_to_retry_or_failure(where, answer, failure):
    async with customer_mx() as mx:
        (mx.rcpt_answers if where == "rcpt" else mx.data_answers).append(answer)
        with pytest.raises(failure) as raised:
            await sender(mx.port).send(outbound())
    code, _, text = answer.partition(" ")
    assert code in str(raised.value) and text in str(raised.value)


async def test_unreachable_or_silent_servers_are_temporary():
    async with customer_mx() as mx:
        port = mx.port
    with pytest.raises(TemporaryFailure, match="could not be reached"):
        await sender(port).send(outbound())  # nothing listens any more

    async def silent(reader, writer):  # accepts, never greets
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        with pytest.raises(TemporaryFailure):
            await sender(server.sockets[0].getsockname()[1], timeout_seconds=0.5).send(outbound())
    finally:
        server.close()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # aiosmtpd cannot tell implicit TLS
@pytest.mark.parametrize("security", ["starttls", "ssl"])
async def test_tls_and_login(trusted_cert, security):
    async with customer_mx(tls=trusted_cert[0], implicit_tls=security == "ssl", logins={"hub": "s3cret"}) as mx:
        delivery = await sender(mx.port, security=security, username="hub", password="s3cret").send(outbound())
        assert mx.received[0].message["Message-ID"] == delivery.external_id
        with pytest.raises(PermanentFailure, match="535"):
            await sender(mx.port, security=security, username="hub", password="wrong").send(outbound())


# --- through the hub: agent reply out, its delivery state in the conversation -----------------


def sending_settings(settings, port: int, **hub_overrides):
    settings = with_email(settings, smtp=SmtpSenderSettings(host="127.0.0.1", port=port, security="none", timeout_seconds=5))
    return settings.model_copy(update=hub_overrides) if hub_overrides else settings


async def customer_writes(hub, raw: bytes) -> dict:
    """Mail from Ana reaches the hub (the spool worker's step, called directly)."""
    await hub.channel.process({}, raw)
    return (await wait_until(lambda: hub.conversations_of("ana@example.com"), what="Ana's conversation"))[0]


async def agent_replies(hub, conversation_id: int, text: str, html: str | None = None) -> dict:
    resp = await hub.client.post(f"/api/v1/conversations/{conversation_id}/replies",
                                 json={"text": text, **({"html": html} if html else {})}, headers=await hub.headers())
    assert resp.status == 201, await resp.text()
    return await resp.json()


def delivery_of(hub, conversation_id: int, message_id: int) -> dict:
    return next(m for m in hub.conversation(conversation_id)["messages"] if m["id"] == message_id)


async def test_agent_reply_arrives_threaded_and_the_answer_to_it_comes_back(settings):
    async with customer_mx() as mx, running_hub(sending_settings(settings, mx.port)) as hub:
        conv = await customer_writes(hub, mail(message_id="<first@example.com>"))
        reply = await agent_replies(hub, conv["id"], "Hello Ana, it ships today.", "<p>Hello Ana, it <b>ships</b> today.</p>")
        await wait_until(lambda: mx.received, what="the reply at the customer's server")
        sent = mx.received[0].message
        assert mx.received[0].rcpt_tos == ["ana@example.com"]
        assert sent["In-Reply-To"] == "<first@example.com>" and sent["References"] == "<first@example.com>"
        assert f"[#{conv['id']}]" in sent["Subject"]
        assert sent["Reply-To"] == f"support+c{conv['id']}@shop.example"
        assert sent.get_body(("html",)) is not None
        stored = await wait_until(lambda: delivery_of(hub, conv["id"], reply["id"])["delivery"]["state"] == "sent"
                                  and delivery_of(hub, conv["id"], reply["id"]), what="the delivery state")
        assert stored["external_id"] == sent["Message-ID"]
        # Ana answers from a client that keeps only In-Reply-To: no token, no plus address.
        await hub.channel.process({}, mail(message_id="<third@example.com>", subject="thanks!", text="Great, thanks\n",
                                           in_reply_to=sent["Message-ID"]))
        await wait_until(lambda: len(hub.conversation(conv["id"])["messages"]) == 3, what="Ana's answer in the thread")
        assert len(hub.conversations_of("ana@example.com")) == 1


async def test_a_4xx_is_retried_until_the_server_takes_it(settings):
    async with customer_mx() as mx, running_hub(sending_settings(
            settings, mx.port, outbox_backoff_base_seconds=0.4, outbox_backoff_max_seconds=0.4)) as hub:
        mx.data_answers += ["451 4.7.1 greylisted, come back later"] * 2
        conv = await customer_writes(hub, mail())
        reply = await agent_replies(hub, conv["id"], "On its way.")
        pending = await wait_until(lambda: (d := delivery_of(hub, conv["id"], reply["id"])["delivery"])
                                   and d["last_error"] and d, what="a first failed attempt")
        assert pending["state"] in ("queued", "sending") and "451" in pending["last_error"]
        assert "greylisted" in pending["last_error"]
        done = await wait_until(lambda: (d := delivery_of(hub, conv["id"], reply["id"])["delivery"])["state"] == "sent"
                                and d, what="the retried delivery")
        assert done["attempts"] == 3 and len(mx.received) == 1


async def test_a_5xx_fails_with_the_servers_reason(settings):
    async with customer_mx() as mx, running_hub(sending_settings(settings, mx.port)) as hub:
        mx.rcpt_answers.append("550 5.1.1 <ana@example.com>: mailbox unavailable")
        conv = await customer_writes(hub, mail())
        reply = await agent_replies(hub, conv["id"], "On its way.")
        failed = await wait_until(lambda: (d := delivery_of(hub, conv["id"], reply["id"])["delivery"])["state"] == "failed"
                                  and d, what="the failed delivery")
        assert failed["attempts"] == 1
        assert "550" in failed["last_error"] and "mailbox unavailable" in failed["last_error"]
        assert mx.received == []
