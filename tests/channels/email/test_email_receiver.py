"""The SMTP/LMTP receiver against real SMTP clients on loopback: who it accepts mail for, the
size limit, 250 only once the mail is spooled, and mail becoming a conversation through the hub.

The shared helpers (a running hub, mail building, waiting) are in tests/support/email.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import smtplib
from email.utils import make_msgid

import aiosmtplib
import pytest

from channels.email import EmailChannel
from channels.email.receiver import spool_key
from hub.config.settings import EmailSettings, SmtpReceiverSettings
from hub.contract.errors import RejectedInput
from tests.conftest import FIXTURES
from tests.support.email import SUPPORT, FakeHub, mail, running_hub, smtp_send, with_email
from tests.support.waiting import wait_until


@contextlib.asynccontextmanager
async def started_channel(hub, **email):
    email.setdefault("addresses", [SUPPORT])
    email.setdefault("receiver", SmtpReceiverSettings(enabled=True, host="127.0.0.1", port=0))
    channel = EmailChannel(EmailSettings(**email))
    await channel.start(hub)
    try:
        yield channel
    finally:
        await asyncio.wait_for(channel.stop(), 10)


# --- the receiver on its own ---------------------------------------------------------------

pytestmark = pytest.mark.timeout(60)


async def test_mail_to_a_support_address_is_spooled_before_250():
    hub = FakeHub()
    async with started_channel(hub) as channel:
        raw = mail()
        errors, reply = await smtp_send(channel.receiver.port, raw, recipients=[SUPPORT, "Support+C12@Shop.Example"])
        assert errors == {} and "queued" in reply
        assert len(hub.spooled) == 1
        name, key, payload, stored = hub.spooled[0]
        assert name == "email" and key == spool_key(stored) == "smtp:" + hashlib.sha256(raw).hexdigest()
        assert stored == raw
        assert payload["mail_from"] == "ana@example.com"
        assert payload["rcpt_tos"] == [SUPPORT, "Support+C12@Shop.Example"]
        assert payload["peer"].startswith("127.0.0.1:")
        # The same bytes again (a relay retrying after a lost 250) are acknowledged, spooled once.
        await smtp_send(channel.receiver.port, raw)
        assert len(hub.spooled) == 1


async def test_bounces_with_a_null_sender_are_accepted():
    # Delivery reports come from <>; refusing them would hide failed replies from the agents.
    hub = FakeHub()
    async with started_channel(hub) as channel:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=channel.receiver.port, timeout=10, start_tls=False)
        await client.connect()
        try:
            await client.ehlo()
            assert (await client.execute_command(b"MAIL", b"FROM:<>")).code == 250
            await client.rcpt(SUPPORT)
            assert (await client.data(mail(sender="MAILER-DAEMON@mx.example.com"))).code == 250
        finally:
            client.close()
        assert hub.spooled[0][2]["mail_from"] == "<>"


@pytest.mark.parametrize("rcpt", ["other@shop.example", "support@other.example", "support.team@shop.example"])
async def test_mail_for_anyone_else_is_refused_with_550(rcpt):
    hub = FakeHub()
    async with started_channel(hub) as channel:
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await smtp_send(channel.receiver.port, mail(to=rcpt), recipients=[rcpt])
        assert refused.value.recipients[0].code == 550
        assert hub.spooled == []


async def test_a_refused_recipient_does_not_stop_the_accepted_one():
    hub = FakeHub()
    async with started_channel(hub) as channel:
        errors, _ = await smtp_send(channel.receiver.port, mail(), recipients=["other@shop.example", SUPPORT])
        assert errors["other@shop.example"].code == 550
        assert hub.spooled[0][2]["rcpt_tos"] == [SUPPORT]


async def test_oversized_mail_gets_552_announced_or_not():
    hub = FakeHub()
    async with started_channel(hub, max_message_bytes=20_000) as channel:
        big = mail(size=30_000)
        port = channel.receiver.port

        def announced():  # smtplib sends SIZE= in MAIL FROM when the server offers SIZE
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
                s.sendmail("ana@example.com", [SUPPORT], big)

        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            await asyncio.to_thread(announced)
        assert refused.value.smtp_code == 552

        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=10, start_tls=False)
        await client.connect()
        try:
            await client.mail("ana@example.com")  # no SIZE: found out while reading DATA
            await client.rcpt(SUPPORT)
            with pytest.raises(aiosmtplib.SMTPDataError) as too_much:
                await client.data(big)
            assert too_much.value.code == 552
        finally:
            client.close()
        assert hub.spooled == []
        await smtp_send(port, mail())  # the session limit did not stick
        assert len(hub.spooled) == 1


def long_line_mail(line: str) -> bytes:
    """A mail whose body is one line, sent 8-bit as it is (EmailMessage would wrap it in QP)."""
    head = f"From: ana@example.com\r\nTo: {SUPPORT}\r\nSubject: One line\r\nMessage-ID: {make_msgid()}\r\n"
    return head.encode() + b"Content-Type: text/html; charset=utf-8\r\n\r\n" + line.encode() + b"\r\n"


async def test_long_lines_are_accepted_up_to_the_size_limit():
    """RFC 5322 asks for lines of at most 998 characters; real mail breaks it (a real Outlook mail
    with a 1,523-byte line, HTML or base64 on one line) and real servers pass such mail on."""
    hub = FakeHub()
    async with started_channel(hub, max_message_bytes=200_000) as channel:
        port = channel.receiver.port
        outlook = (FIXTURES / "email" / "talon" / "standard_replies" / "outlook.eml").read_bytes()
        assert max(len(line) for line in outlook.splitlines()) > 998
        one_line = long_line_mail("<p>" + "Where is my order? " * 5000 + "</p>")  # a 95 KB line
        for raw in (outlook, one_line):
            errors, reply = await smtp_send(port, raw)
            assert errors == {} and "queued" in reply
        # Byte for byte as sent (the client sends CRLF line ends and ends the last line).
        sent = [re.sub(rb"\r?\n", b"\r\n", raw).rstrip(b"\r\n") for raw in (outlook, one_line)]
        assert [stored.rstrip(b"\r\n") for _, _, _, stored in hub.spooled] == sent
        # A line longer than the whole size limit is still refused, for its size and for good
        # (at MAIL FROM when the client announces the size, at the end of DATA otherwise).
        with pytest.raises((aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPDataError)) as refused:
            await smtp_send(port, long_line_mail("x" * 300_000))
        assert refused.value.code == 552
        assert len(hub.spooled) == 2
        await smtp_send(port, mail())  # the session is usable after it
        assert len(hub.spooled) == 3


async def test_lmtp_accepts_long_lines_too():
    hub = FakeHub()
    async with started_channel(hub, receiver=SmtpReceiverSettings(enabled=True, port=0, lmtp=True)) as channel:
        raw = long_line_mail("a" * 5000)
        reader, writer = await asyncio.open_connection("127.0.0.1", channel.receiver.port)
        try:
            await reader.readline()
            for command in (b"LHLO mx.example", b"MAIL FROM:<ana@example.com>", f"RCPT TO:<{SUPPORT}>".encode(), b"DATA"):
                writer.write(command + b"\r\n")
                while (await asyncio.wait_for(reader.readline(), 10))[3:4] == b"-":
                    pass  # the lines of a multi-line reply before its last
            writer.write(raw.replace(b"\n.", b"\n..") + b".\r\n")
            assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"250")
        finally:
            writer.close()
        assert hub.spooled[0][3] == raw


async def test_no_250_when_the_spool_fails():
    hub = FakeHub(spool_error=RuntimeError("database is locked"))
    async with started_channel(hub) as channel:
        with pytest.raises(aiosmtplib.SMTPDataError) as failed:
            await smtp_send(channel.receiver.port, mail())
        assert failed.value.code == 451


async def test_lmtp_answers_data_once_per_recipient():
    hub = FakeHub()
    async with started_channel(hub, receiver=SmtpReceiverSettings(enabled=True, port=0, lmtp=True)) as channel:
        reader, writer = await asyncio.open_connection("127.0.0.1", channel.receiver.port)

        async def say(line: str | bytes, replies: int = 1) -> list[str]:
            if line:
                writer.write(line if isinstance(line, bytes) else line.encode() + b"\r\n")
            out = []
            while len(out) < replies:
                got = (await asyncio.wait_for(reader.readline(), 10)).decode().rstrip()
                if got[3:4] != "-":  # the last line of a multi-line reply
                    out.append(got)
            return out

        try:
            assert (await say(b""))[0].startswith("220")
            assert (await say("EHLO mx.example"))[0].startswith("500")  # LMTP speaks LHLO
            assert (await say("LHLO mx.example"))[0].startswith("250")
            assert (await say("MAIL FROM:<ana@example.com>"))[0].startswith("250")
            assert (await say(f"RCPT TO:<{SUPPORT}>"))[0].startswith("250")
            assert (await say("RCPT TO:<support+c7@shop.example>"))[0].startswith("250")
            assert (await say("RCPT TO:<nobody@shop.example>"))[0].startswith("550")
            assert (await say("DATA"))[0].startswith("354")
            replies = await say(mail().replace(b"\n.", b"\n..") + b".\r\n", replies=2)
            assert [r[:3] for r in replies] == ["250", "250"]
            assert (await say("QUIT"))[0].startswith("221")
        finally:
            writer.close()
        assert hub.spooled[0][2]["source"] == "lmtp"
        assert hub.spooled[0][2]["rcpt_tos"] == [SUPPORT, "support+c7@shop.example"]


async def test_process_parses_and_ingests_with_the_envelope():
    hub = FakeHub()
    channel = EmailChannel(EmailSettings(addresses=[SUPPORT], receiver=SmtpReceiverSettings(enabled=True, port=0)))
    await channel.start(hub)
    try:
        raw = mail(message_id="<m1@example.com>")
        await channel.process({"mail_from": "ana@example.com", "rcpt_tos": ["support+c42@shop.example"]}, raw)
        message = hub.ingested[0]
        assert message.channel == "email" and message.external_id == "<m1@example.com>"
        assert message.sender.address == "ana@example.com"
        # Bcc'd to the conversation's plus address: the envelope tells which conversation.
        assert message.thread.conversation_id == 42
        assert message.metadata["envelope"]["rcpt_tos"] == ["support+c42@shop.example"]
        # Mail from our own address is flagged: never answered automatically (no loops).
        await channel.process({}, mail(sender=SUPPORT, message_id="<m2@shop.example>"))
        assert "own_address" in hub.ingested[1].flags and hub.ingested[1].automated
        with pytest.raises(RejectedInput):
            await channel.process({}, b"\x00\x01 this is not an email at all \xff")
    finally:
        await channel.stop()


# --- through the hub ----------------------------------------------------------------------


async def test_received_mail_becomes_a_conversation_of_its_sender(settings):
    settings = with_email(settings, receiver=SmtpReceiverSettings(enabled=True, host="127.0.0.1", port=0))
    async with running_hub(settings) as hub:
        await smtp_send(hub.smtp_port, mail(message_id="<first@example.com>"))
        await smtp_send(hub.smtp_port, mail(sender="Bo <bo@example.org>", message_id="<bo@example.org>",
                                            subject="Invoice copy", text="Please send me the invoice.\n"),
                        sender="bo@example.org")
        ana = await wait_until(lambda: hub.conversations_of("ana@example.com"), what="Ana's conversation")
        bo = await wait_until(lambda: hub.conversations_of("bo@example.org"), what="Bo's conversation")
        assert ana[0]["customer"]["id"] != bo[0]["customer"]["id"]
        assert ana[0]["channel"] == "email" and ana[0]["subject"] == "Where is my order 1234?"
        first = ana[0]["messages"][0]
        assert first["external_id"] == "<first@example.com>" and "order 1234" in first["text"]
        assert bo[0]["messages"][0]["text"].startswith("Please send me the invoice.")
        # A second mail from Ana in the same thread joins her conversation.
        await smtp_send(hub.smtp_port, mail(message_id="<second@example.com>", subject="Re: Where is my order 1234?",
                                            text="Any news?\n", in_reply_to="<first@example.com>"))
        await wait_until(lambda: len(hub.conversation(ana[0]["id"])["messages"]) == 2, what="the follow-up")
        assert len(hub.conversations_of("ana@example.com")) == 1


async def test_unreadable_mail_is_kept_as_rejected_with_its_reason(settings):
    settings = with_email(settings, receiver=SmtpReceiverSettings(enabled=True, host="127.0.0.1", port=0))
    async with running_hub(settings) as hub:
        await smtp_send(hub.smtp_port, b"\x00\x01\x02 binary garbage, no headers\r\n\xff\xfe\r\n")
        await smtp_send(hub.smtp_port, mail(message_id="<after@example.com>"))

        async def rejected():
            resp = await hub.client.get("/api/v1/inbound/rejected?channel=email", headers=await hub.headers("admin"))
            assert resp.status == 200
            return (await resp.json())["items"]

        items = await wait_until(rejected, what="the rejected mail")
        assert items[0]["key"].startswith("smtp:") and "not an email" in items[0]["reason"]
        assert items[0]["raw_sha256"]
        await wait_until(lambda: hub.conversations_of("ana@example.com"), what="the good mail after it")
