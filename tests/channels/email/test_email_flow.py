"""The email channel end to end, as the issue's "done when": mail sent to the SMTP receiver or
dropped into the IMAP mailbox becomes a conversation of the right customer; the agent's reply
through the API reaches the customer's mail server, threaded; the customer's answer to that reply
lands in the same conversation. Everything real on loopback: aiosmtpd, Dovecot, the hub's app."""

from __future__ import annotations

import email.utils

import pytest

from hub.config.settings import SmtpReceiverSettings, SmtpSenderSettings
from tests.support.email import SUPPORT, account, customer_mx, mail, reply_and_receive, running_hub, smtp_send, with_email
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("quick_reconnect")]

ANA = "ana@example.com"


async def customer_of(hub, conversation: dict) -> dict:
    resp = await hub.client.get(f"/api/v1/customers/{conversation['customer']['id']}", headers=await hub.headers())
    assert resp.status == 200, await resp.text()
    return await resp.json()


def answer_to(sent, text: str, message_id: str) -> bytes:
    """What the customer's mail client makes of "Reply": To the Reply-To, Re: subject, threading headers."""
    references = " ".join(filter(None, [sent.message["References"], sent.message["Message-ID"]]))
    return mail(to=sent.message["Reply-To"], subject="Re: " + sent.message["Subject"], text=text,
                message_id=message_id, in_reply_to=sent.message["Message-ID"], references=references)


def check_threaded(sent, customer_message_id: str, conversation_id: int) -> None:
    msg = sent.message
    assert sent.rcpt_tos == [ANA]
    assert email.utils.parseaddr(msg["From"])[1] == SUPPORT
    assert msg["In-Reply-To"] == customer_message_id
    assert customer_message_id in msg["References"].split()
    assert f"[#{conversation_id}]" in msg["Subject"]
    assert msg["Reply-To"] == f"support+c{conversation_id}@shop.example"


async def test_smtp_in_reply_out_answer_back_in(settings):
    async with customer_mx() as mx:
        settings = with_email(
            settings,
            receiver=SmtpReceiverSettings(enabled=True, host="127.0.0.1", port=0),
            smtp=SmtpSenderSettings(host="127.0.0.1", port=mx.port, security="none", timeout_seconds=5),
        )
        async with running_hub(settings) as hub:
            await smtp_send(hub.smtp_port, mail(message_id="<order-question@example.com>"), sender=ANA)
            [conv] = await wait_until(lambda: hub.conversations_of(ANA), what="Ana's conversation")
            customer = await customer_of(hub, conv)
            assert {(i["kind"], i["address"]) for i in customer["identities"]} == {("email", ANA)}
            assert conv["channel"] == "email" and "order 1234" in conv["messages"][0]["text"]

            sent = await reply_and_receive(hub, mx, conv, "Hello Ana, your parcel ships today.")
            check_threaded(sent, "<order-question@example.com>", conv["id"])
            assert "your parcel ships today" in sent.message.get_body(("plain",)).get_content()

            await smtp_send(hub.smtp_port, answer_to(sent, "Thank you!\n", "<thanks@example.com>"), sender=ANA,
                            recipients=[sent.message["Reply-To"]])
            await wait_until(lambda: "<thanks@example.com>" in hub.inbound_ids(), what="Ana's answer")
            [again] = hub.conversations_of(ANA)
            assert again["id"] == conv["id"]
            assert [m["direction"] for m in again["messages"]] == ["inbound", "outbound", "inbound"]
            assert again["messages"][1]["external_id"] == sent.message["Message-ID"]

            # A second round threads the same way: the reply cites the whole thread.
            sent2 = await reply_and_receive(hub, mx, conv, "You are welcome.")
            check_threaded(sent2, "<thanks@example.com>", conv["id"])
            assert "<order-question@example.com>" in sent2.message["References"]


async def test_imap_in_reply_out_answer_back_in(settings, dovecot):
    async with customer_mx() as mx:
        settings = with_email(
            settings,
            imap=[account(dovecot)],
            smtp=SmtpSenderSettings(host="127.0.0.1", port=mx.port, security="none", timeout_seconds=5),
        )
        async with running_hub(settings) as hub:
            dovecot.append(mail(message_id="<imap-question@example.com>"))
            [conv] = await wait_until(lambda: hub.conversations_of(ANA), what="Ana's conversation from IMAP")
            customer = await customer_of(hub, conv)
            assert {(i["kind"], i["address"]) for i in customer["identities"]} == {("email", ANA)}

            sent = await reply_and_receive(hub, mx, conv, "Hello Ana, we are on it.")
            check_threaded(sent, "<imap-question@example.com>", conv["id"])

            # The mail server delivers Ana's answer into the mailbox the hub reads.
            dovecot.append(answer_to(sent, "Great, thanks.\n", "<imap-thanks@example.com>"))
            await wait_until(lambda: "<imap-thanks@example.com>" in hub.inbound_ids(), what="Ana's answer via IMAP")
            [again] = hub.conversations_of(ANA)
            assert again["id"] == conv["id"] and len(again["messages"]) == 3
