"""The spool inside the running hub: messages of one channel stored in the order they came in
even when processed side by side (a reply threads onto the message it answers), an earlier item
that takes too long losing its place instead of holding the rest up, and rejected items retried
through the API (admin only)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, text

from channels.email.parse import parse
from hub.config.settings import SmtpReceiverSettings
from hub.gateway.registry import build_registry
from hub.ingest import spool as spool_module
from hub.ingest.spool import rejected, spool
from hub.store.models import AuditLog
from hub.web.keys import BLOBS, ENGINE, SPOOL
from tests.support.email import RunningHub, mail, running_hub, smtp_send, with_email
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(60)


class GatedMail:
    """The email channel's processing (the real parser in the hub's parser processes, then the
    hub's ingest), where an item whose payload names a gate waits for it first: a mail whose
    parsing takes its time."""

    name = "email"

    def __init__(self):
        self.gates: dict[str, asyncio.Event] = {}
        self.hub = None
        self.handed_over: list[str] = []  # Message-IDs handed to the hub's ingest, in that order

    def gate(self, name: str) -> asyncio.Event:
        return self.gates.setdefault(name, asyncio.Event())

    async def start(self, hub):
        self.hub = hub

    async def stop(self):
        pass

    async def send(self, message):
        raise NotImplementedError

    async def process(self, payload, raw):
        message = await self.hub.run_parser(parse, raw, own_addresses=("support@shop.example",))
        if payload.get("gate"):
            await self.gate(payload["gate"]).wait()
        self.handed_over.append(message.external_id)
        await self.hub.ingest(message)


def hub_with(settings, channel):
    registry = build_registry(settings)
    registry.register(channel, channel.name)
    return running_hub(settings, registry=registry)


def put(hub: RunningHub, key: str, raw: bytes, **payload) -> None:
    spool(hub.app[ENGINE], hub.app[BLOBS], "email", key, payload, raw)


def stored(hub: RunningHub) -> list[tuple[str, int]]:
    """(Message-ID, conversation) of the stored inbound mail, in the order they were stored."""
    with hub.engine.connect() as conn:
        rows = conn.execute(text("SELECT external_id, conversation_id FROM message WHERE channel = 'email' "
                                 "AND direction = 'inbound' ORDER BY id")).all()
    return [(r[0], r[1]) for r in rows]


async def test_a_reply_is_stored_after_the_message_it_answers_though_ready_first(settings):
    channel = GatedMail()
    async with hub_with(settings, channel) as hub:
        put(hub, "parent", mail(message_id="<parent@example.com>", subject="Order 1234"), gate="parent")
        put(hub, "reply", mail(message_id="<reply@example.com>", subject="Re: Order 1234", in_reply_to="<parent@example.com>",
                                text="Any news?\n"))
        put(hub, "other", mail(sender="Bo <bo@example.org>", message_id="<other@example.org>", subject="Returns"))
        hub.app[SPOOL].wake("email")
        await wait_until(lambda: len(channel.handed_over) == 2, what="the reply and the other mail parsed")
        await asyncio.sleep(0.3)
        assert stored(hub) == []  # they wait for the parent's turn
        channel.gate("parent").set()
        result = await wait_until(lambda: len(stored(hub)) == 3 and stored(hub), what="the three mails")
        assert set(channel.handed_over[:2]) == {"<reply@example.com>", "<other@example.org>"}
        assert channel.handed_over[2] == "<parent@example.com>"
        assert [mid for mid, _ in result] == ["<parent@example.com>", "<reply@example.com>", "<other@example.org>"]
        (_, parent), (_, reply), (_, other) = result
        assert reply == parent != other  # the reply threaded onto its parent


async def test_an_item_that_takes_too_long_loses_its_place(settings, monkeypatch):
    monkeypatch.setattr(spool_module, "ORDER_WAIT", 0.3)
    channel = GatedMail()
    async with hub_with(settings, channel) as hub:
        put(hub, "slow", mail(message_id="<slow@example.com>"), gate="slow")
        for i in range(5):
            put(hub, f"m{i}", mail(sender=f"C{i} <c{i}@example.org>", message_id=f"<m{i}@example.org>"))
        hub.app[SPOOL].wake("email")
        await wait_until(lambda: len(stored(hub)) == 5, what="the five mails behind the slow one")
        assert [mid for mid, _ in stored(hub)] == [f"<m{i}@example.org>" for i in range(5)]  # still in their order
        channel.gate("slow").set()
        await wait_until(lambda: len(stored(hub)) == 6, what="the slow one, when it is ready")
        assert stored(hub)[-1][0] == "<slow@example.com>"


async def test_rejected_items_are_retried_through_the_api_by_an_admin(settings):
    settings = with_email(settings, receiver=SmtpReceiverSettings(enabled=True, host="127.0.0.1", port=0))
    async with running_hub(settings) as hub:
        await smtp_send(hub.smtp_port, b"\x00\x01\x02 binary garbage, no headers\r\n\xff\xfe\r\n")
        [item] = await wait_until(lambda: rejected(hub.engine), what="the rejected mail")
        url = f"/api/v1/inbound/rejected/{item['id']}/retry"
        agent, admin = await hub.headers("agent"), await hub.headers("admin")

        resp = await hub.client.post(url, headers=agent)
        assert resp.status == 403
        resp = await hub.client.post("/api/v1/inbound/rejected/999999/retry", headers=admin)
        assert resp.status == 404
        resp = await hub.client.post(url, json={"budget_seconds": 0}, headers=admin)
        assert resp.status == 422
        resp = await hub.client.post(url, json={"budget_seconds": 120}, headers=admin)
        assert resp.status == 202, await resp.text()
        body = await resp.json()
        assert (body["id"], body["status"], body["budget_seconds"]) == (item["id"], "pending", 120.0)
        # Processed again at once: still not an email, so rejected again, with the reason.
        again = await wait_until(lambda: [i for i in rejected(hub.engine) if i["id"] == item["id"]], what="the second rejection")
        assert "not an email" in again[0]["reason"] and again[0]["attempts"] == 1
        resp = await hub.client.post(url, headers=admin)
        assert resp.status == 202  # rejected again: may be retried again
        await wait_until(lambda: any(i["id"] == item["id"] for i in rejected(hub.engine)), what="the third rejection")

        # A mail that was stored: nothing to retry.
        await smtp_send(hub.smtp_port, mail(message_id="<fine@example.com>"))
        def done_id():
            with hub.engine.connect() as conn:
                return conn.execute(text("SELECT id FROM inbound_spool WHERE status = 'done'")).scalar()

        done = await wait_until(done_id, what="the good mail processed")
        with hub.engine.connect() as conn:
            audit = conn.execute(select(AuditLog.__table__).where(AuditLog.__table__.c.action == "inbound.retry")).all()
        resp = await hub.client.post(f"/api/v1/inbound/rejected/{done}/retry", headers=admin)
        assert resp.status == 409 and (await resp.json())["error"]["code"] == "conflict"
        assert len(audit) == 2 and all(r.target == f"inbound:{item['id']}" for r in audit)
        assert audit[0].actor.startswith("agent:")

        doc = await (await hub.client.get("/api/v1/openapi.json")).json()
        assert "202" in doc["paths"]["/api/v1/inbound/rejected/{id}/retry"]["post"]["responses"]
