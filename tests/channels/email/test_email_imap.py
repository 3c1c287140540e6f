"""The IMAP poller against a real Dovecot on loopback (tests/support/dovecot.py): backfill, IDLE and
polling, flags left alone, restarts and dropped connections without loss or duplicates, and
oversized or broken mail rejected without stopping the rest."""

from __future__ import annotations

import asyncio

import aioimaplib
import pytest
from sqlalchemy import text

from channels.email.imap import ImapPoller, in_pieces, parse_fetch
from hub.ingest.spool import counts, rejected
from hub.store.state import load_state
from tests.conftest import need
from tests.support.dovecot import Dovecot, find_dovecot
from tests.support.email import FakeHub, account, mail, running_hub, with_email
from tests.support.email_corpus import copies, real_mails
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.timeout(90), pytest.mark.usefixtures("quick_reconnect")]


def imap_settings(settings, server: Dovecot, *, max_message_bytes: int = 25 * 1_048_576, **overrides):
    return with_email(settings, imap=[account(server, **overrides)], max_message_bytes=max_message_bytes)


def poller_of(hub) -> ImapPoller:
    return hub.channel.pollers[0]


def test_parse_fetch_reads_aioimaplib_lines():
    lines = [
        b"1 FETCH (UID 7 RFC822.SIZE 12 BODY[] {12}", bytearray(b"Subject: x\r\n"), b")",
        b"2 FETCH (FLAGS (\\Seen))",  # unsolicited, no UID: dropped
        b"3 FETCH (RFC822.SIZE 99 UID 9)",
        b"Fetch completed (0.001 + 0.000 secs).",
    ]
    items = parse_fetch(lines)
    assert [(i.uid, i.size, i.literal) for i in items] == [(7, 12, b"Subject: x\r\n"), (9, 99, None)]


async def test_backfill_then_idle_leaving_flags_alone(settings, dovecot):
    first = dovecot.append(mail(message_id="<old1@example.com>", subject="Old one"))
    seen = dovecot.append(mail(sender="Bo <bo@example.org>", message_id="<old2@example.org>", subject="Read already"),
                          flags=r"(\Seen)")
    async with running_hub(imap_settings(settings, dovecot)) as hub:
        await wait_until(lambda: hub.conversations_of("ana@example.com") and hub.conversations_of("bo@example.org"),
                         what="the backfilled messages")
        await asyncio.wait_for(poller_of(hub).connected.wait(), 10)
        # New mail arrives through IDLE: polling would take 30 s.
        dovecot.append(mail(sender="Cy <cy@example.net>", message_id="<new@example.net>", subject="New one"))
        await wait_until(lambda: hub.conversations_of("cy@example.net"), timeout=8, what="the IDLE delivery")
        # A message a person marks \Seen in their mail client is still fetched.
        uid = dovecot.append(mail(sender="Di <di@example.com>", message_id="<seen-later@example.com>"))
        dovecot.mark_seen(uid)
        await wait_until(lambda: hub.conversations_of("di@example.com"), timeout=8, what="the message marked seen")
        state = await wait_until(lambda: (load_state(hub.engine, "email", "imap:support") or {}).get("last_uid") == uid
                                 and load_state(hub.engine, "email", "imap:support"), what="the saved state")
        assert state["uidvalidity"] > 0
    # The hub read without touching flags: unread stays unread, read stays read.
    assert "\\Seen" not in dovecot.flags(first)
    assert "\\Seen" in dovecot.flags(seen)


async def test_polling_when_idle_is_off(settings, dovecot):
    async with running_hub(imap_settings(settings, dovecot, idle=False, poll_seconds=0.2)) as hub:
        await asyncio.wait_for(poller_of(hub).connected.wait(), 10)
        dovecot.append(mail(message_id="<polled@example.com>"))
        await wait_until(lambda: hub.conversations_of("ana@example.com"), timeout=8, what="the polled message")


async def test_restarts_and_dropped_connections_lose_and_duplicate_nothing(settings, dovecot):
    ids = [f"<m{i}@example.com>" for i in range(6)]
    dovecot.append(mail(message_id=ids[0], subject="one"))
    async with running_hub(imap_settings(settings, dovecot)) as hub:
        poller = poller_of(hub)
        await wait_until(lambda: ids[0] in hub.inbound_ids(), what="the first message")
        sessions = poller.sessions

        dovecot.restart(hard=True)  # a crash: connections cut without BYE
        dovecot.append(mail(message_id=ids[1], subject="two", in_reply_to=ids[0]))
        await wait_until(lambda: ids[1] in hub.inbound_ids(), what="mail after a server crash")
        assert poller.sessions > sessions

        dovecot.stop()  # a clean shutdown; mail arrives while the hub cannot connect
        await asyncio.sleep(0.5)
        dovecot.start()
        dovecot.append(mail(message_id=ids[2], subject="three", in_reply_to=ids[1]))
        await wait_until(lambda: ids[2] in hub.inbound_ids(), what="mail after a server restart")

        # The network drops the line under the hub.
        sessions = poller.sessions
        poller._client.protocol.transport.abort()
        dovecot.append(mail(message_id=ids[3], subject="four", in_reply_to=ids[2]))
        await wait_until(lambda: ids[3] in hub.inbound_ids(), what="mail after a dropped connection")
        assert poller.sessions > sessions

    # The hub itself restarts: it resumes from the saved UID, backfilling what came meanwhile.
    dovecot.append(mail(message_id=ids[4], subject="five", in_reply_to=ids[3]))
    async with running_hub(imap_settings(settings, dovecot)) as hub:
        dovecot.append(mail(message_id=ids[5], subject="six", in_reply_to=ids[4]))
        await wait_until(lambda: ids[5] in hub.inbound_ids() and ids[4] in hub.inbound_ids(), what="all six")
        await asyncio.sleep(0.3)  # room for a duplicate to show up, were there one
        assert sorted(hub.inbound_ids()) == sorted(ids)
        assert len(hub.conversations()) == 1  # one thread by In-Reply-To


async def test_a_changed_uidvalidity_rereads_without_duplicates(settings, dovecot):
    dovecot.append(mail(message_id="<a@example.com>"))
    async with running_hub(imap_settings(settings, dovecot)) as hub:
        await wait_until(lambda: "<a@example.com>" in hub.inbound_ids(), what="the first message")
        before = load_state(hub.engine, "email", "imap:support")
        # The server loses its UID list (a restore, a migration): UIDs are renumbered, and
        # Dovecot's new UIDVALIDITY is the clock in seconds.
        await asyncio.sleep(1.05)
        dovecot.stop()
        maildir = dovecot.dir / "mail" / dovecot.username
        for path in list(maildir.glob("dovecot*")):
            path.unlink()
        dovecot.start()
        dovecot.append(mail(message_id="<b@example.com>", subject="after the renumbering"))
        await wait_until(lambda: "<b@example.com>" in hub.inbound_ids(), what="mail after the renumbering")
        after = load_state(hub.engine, "email", "imap:support")
        assert after["uidvalidity"] != before["uidvalidity"]
        assert sorted(hub.inbound_ids()) == ["<a@example.com>", "<b@example.com>"]


async def test_oversized_and_broken_mail_is_rejected_and_the_rest_arrives(settings, dovecot):
    dovecot.append(mail(message_id="<before@example.com>", subject="before"))
    big_uid = dovecot.append(mail(sender="Big <big@example.com>", message_id="<big@example.com>", subject="huge scan",
                                  size=40_000))
    dovecot.append(b"\xff\xfe\x01 this is no email, just bytes\r\n\x80\x81\r\n")
    dovecot.append(mail(sender="Bo <bo@example.org>", message_id="<after@example.org>", subject="after"))
    async with running_hub(imap_settings(settings, dovecot, max_message_bytes=20_000)) as hub:
        await wait_until(lambda: hub.conversations_of("ana@example.com") and hub.conversations_of("bo@example.org"),
                         what="the good messages around the bad ones")
        items = await wait_until(lambda: len(rejected(hub.engine, channel="email")) == 2
                                 and rejected(hub.engine, channel="email"), what="two rejections")
        by_key = {item["key"]: item for item in items}
        uidvalidity = load_state(hub.engine, "email", "imap:support")["uidvalidity"]
        big = by_key[f"imap:support:{uidvalidity}:{big_uid}"]
        assert "over the limit of 20000 bytes" in big["reason"] and big["raw_sha256"] is None  # never downloaded
        broken = by_key[f"imap:support:{uidvalidity}:{big_uid + 1}"]
        assert "not an email" in broken["reason"] and broken["raw_sha256"]
        resp = await hub.client.get("/api/v1/inbound/rejected?channel=email", headers=await hub.headers("admin"))
        assert {i["key"] for i in (await resp.json())["items"]} == set(by_key)
        # Later mail still arrives.
        dovecot.append(mail(sender="Cy <cy@example.net>", message_id="<later@example.net>"))
        await wait_until(lambda: hub.conversations_of("cy@example.net"), what="mail after the rejections")
        assert not hub.conversations_of("big@example.com")


@pytest.mark.parametrize("security", ["ssl", "starttls"])
async def test_tls(security, trusted_cert):
    need(find_dovecot() is not None, "dovecot is not installed (apt-get install dovecot-imapd)")
    _, cert, key = trusted_cert
    server = Dovecot(tls=(cert, key))
    server.start()
    try:
        server.append(mail(message_id="<tls@example.com>"))
        hub = FakeHub()
        port = server.ssl_port if security == "ssl" else server.port
        poller = ImapPoller(account(server, security=security, port=port), hub, max_message_bytes=1_000_000)
        poller.start()
        try:
            await wait_until(lambda: hub.spooled, what="a message over TLS")
        finally:
            await poller.stop()
        assert b"<tls@example.com>" in hub.spooled[0][3]
        logins = [line for line in server.log.splitlines() if "Login: user=<support>" in line]
        assert "TLS" in logins[-1], server.log  # the first login is the append above, in clear
    finally:
        server.close()


async def test_poller_alone_spools_then_saves_state(dovecot):
    """The order that makes a crash safe: spool first, state after."""
    for i in range(3):
        dovecot.append(mail(message_id=f"<p{i}@example.com>"))
    events = []

    class Recording(FakeHub):
        async def spool(self, channel, key, payload, raw=None):
            events.append(("spool", payload["uid"]))
            return await super().spool(channel, key, payload, raw)

        async def save_state(self, channel, name, value):
            events.append(("state", value["last_uid"]))
            await super().save_state(channel, name, value)

    hub = Recording()
    poller = ImapPoller(account(dovecot), hub, max_message_bytes=1_000_000)
    poller.start()
    try:
        await wait_until(lambda: ("state", 3) in events, what="the state after three messages")
    finally:
        await poller.stop()
    assert events.index(("spool", 3)) < events.index(("state", 3))
    assert [e for e in events if e[0] == "spool"] == [("spool", 1), ("spool", 2), ("spool", 3)]
    # Started again from the saved state: nothing is fetched twice.
    poller = ImapPoller(account(dovecot), hub, max_message_bytes=1_000_000)
    poller.start()
    try:
        await asyncio.wait_for(poller.connected.wait(), 10)
        dovecot.append(mail(message_id="<p3@example.com>"))
        await wait_until(lambda: ("spool", 4) in events, what="the fourth message")
    finally:
        await poller.stop()
    assert [e[1] for e in events if e[0] == "spool"] == [1, 2, 3, 4]


# --- large mailboxes ---------------------------------------------------------------------------


def test_reads_are_handed_to_aioimaplib_in_pieces_it_can_take():
    """aioimaplib recurses once per line of a read: a server's unasked answer of thousands of
    lines (a person expunging thousands of messages) would raise RecursionError and end the
    session. Handed over in pieces, as the network could have cut them, it is read whole."""
    loop = asyncio.new_event_loop()
    try:
        protocol = aioimaplib.IMAP4ClientProtocol(loop)
        protocol.state = aioimaplib.SELECTED
        lines = b"".join(b"* %d EXPUNGE\r\n" % n for n in range(5000, 0, -1))
        with pytest.raises(RecursionError):
            protocol.data_received(lines)
        protocol = aioimaplib.IMAP4ClientProtocol(loop)
        protocol.state = aioimaplib.SELECTED
        seen = []
        original = protocol._untagged_response
        protocol._untagged_response = lambda line: seen.append(line) or original(line)
        for piece in in_pieces(lines):
            protocol.data_received(piece)
        assert len(seen) == 5000 and seen[0] == b"* 5000 EXPUNGE" and seen[-1] == b"* 1 EXPUNGE"
    finally:
        loop.close()


def test_in_pieces_cuts_after_line_ends_and_keeps_every_byte():
    data = b"".join(b"line %d\r\n" % i for i in range(250)) + b"partial {12}"
    pieces = list(in_pieces(data, lines=100))
    assert b"".join(pieces) == data
    assert [p.count(b"\n") for p in pieces] == [100, 100, 50]
    assert all(p.endswith(b"\n") for p in pieces[:-1])
    assert list(in_pieces(b"one\r\ntwo\r\n", lines=100)) == [b"one\r\ntwo\r\n"]


def stored_emails(engine) -> tuple[int, int]:
    """(inbound email messages, distinct Message-IDs among them)"""
    with engine.connect() as conn:
        row = conn.execute(text("SELECT count(*), count(DISTINCT external_id) FROM message "
                                "WHERE channel = 'email' AND direction = 'inbound'")).one()
    return row[0], row[1]


@pytest.mark.slow
@pytest.mark.timeout(400)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_ten_thousand_messages_then_a_backlog_after_downtime(settings, dovecot):
    """A real-sized mailbox: 10,000 real mails at the first start, read in bounded answers in
    one session; someone empties most of it while the hub idles (thousands of EXPUNGE at once);
    the hub is down while 2,000 more arrive, and reads them all after the restart. Every mail
    stored once."""
    corpus = real_mails()
    assert len(corpus) > 50
    first, backlog = 10_000, 2_000
    dovecot.deliver(copies(corpus, 0, first))
    async with running_hub(imap_settings(settings, dovecot)) as hub:
        poller = poller_of(hub)
        await wait_until(lambda: stored_emails(hub.engine)[0] >= first, timeout=300, interval=0.5,
                         what=f"{first} mails from the mailbox")
        assert stored_emails(hub.engine) == (first, first)
        assert poller.sessions == 1  # no session died on the way
        assert load_state(hub.engine, "email", "imap:support")["last_uid"] == first

        # A person deletes all but ten messages from their mail client: the server tells the
        # idling hub about each expunged message at once.
        assert await asyncio.to_thread(dovecot.expunge_all_but, 10) == first - 10
        dovecot.append(mail(sender="Cy <cy@example.net>", message_id="<after-expunge@example.net>"))
        await wait_until(lambda: stored_emails(hub.engine)[0] == first + 1, timeout=30, what="mail after the expunge")
        assert poller.sessions == 1

    dovecot.deliver(copies(corpus, first, backlog), start=first)
    async with running_hub(imap_settings(settings, dovecot)) as hub:
        await wait_until(lambda: stored_emails(hub.engine)[0] >= first + 1 + backlog, timeout=120, interval=0.5,
                         what=f"the backlog of {backlog}")
        await asyncio.sleep(0.5)  # room for a duplicate to show up, were there one
        assert stored_emails(hub.engine) == (first + 1 + backlog,) * 2
        assert poller_of(hub).sessions == 1
        assert counts(hub.engine) == {"done": first + 1 + backlog}
