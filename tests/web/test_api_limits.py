"""What the REST API and the inbox list take in, on SQLite and PostgreSQL: body limits per route
(a long call's transcript is a document, ordinary JSON stays small) and search text that is not
text (NUL and other control characters) refused as a bad request, never taken for a store outage."""

from __future__ import annotations

import base64
import gzip
import json
import re

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.auth.accounts import create_agent, create_token
from hub.contract.errors import UnreadableInput
from hub.store.db import make_engine
from hub.store.search_text import search_text
from hub.web.app import create_app
from tests.support.transcribe import hour_long_call

CALLER = "+442079460958"


@pytest.fixture
async def hub(settings):
    app = create_app(settings)
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "agent@example.com", "agent password", role="agent")
    integration = {"Authorization": f"Bearer {create_token(engine, 'pbx', role='integration')}"}
    engine.dispose()
    client = TestClient(TestServer(app))
    await client.start_server()
    resp = await client.post("/api/v1/auth/login", json={"email": "agent@example.com", "password": "agent password"})
    agent = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    yield client, integration, agent, settings
    await client.close()


def call(call_id: str, transcript) -> dict:
    return {"call_id": call_id, "caller": CALLER, "callee": "+442071234567", "direction": "inbound",
            "started_at": "2026-05-01T10:15:00Z", "ended_at": "2026-05-01T11:15:00Z", "transcript": transcript}


# --- body limits per route ---------------------------------------------------------------------------


async def test_an_hour_long_call_is_taken_while_ordinary_json_stays_small(hub):
    client, integration, agent, settings = hub
    body = json.dumps(call("hour-1", hour_long_call()))
    assert 2_000_000 < len(body) and settings.max_request_bytes < len(body) < settings.max_attachment_bytes
    resp = await client.post("/api/v1/calls", data=body, headers={**integration, "Content-Type": "application/json"})
    assert resp.status == 201, await resp.text()
    conv = await (await client.get(f"/api/v1/conversations/{(await resp.json())['conversation_id']}", headers=agent)).json()
    [msg] = conv["messages"]
    assert msg["channel"] == "voice" and msg["text"].count("\n") > 500  # every turn of the hour is there
    # The same size is still too much for an ordinary route: a message, a note.
    big = {"channel": "api", "external_id": "m-big", "sender": {"address": "ana@example.com"}, "text": "x" * len(body)}
    resp = await client.post("/api/v1/messages", json=big, headers=integration)
    assert resp.status == 413
    assert "SERVICEHUB_MAX_REQUEST_BYTES" in (await resp.json())["error"]["message"]


async def test_a_transcript_over_the_attachment_limit_is_refused_clearly(hub, settings):
    client, integration, _, _ = hub
    limit = settings.max_attachment_bytes
    body = json.dumps(call("too-long", {"results": {"transcripts": [{"transcript": "x" * (limit + 10)}]}}))
    resp = await client.post("/api/v1/calls", data=body, headers={**integration, "Content-Type": "application/json"})
    assert resp.status == 413
    error = (await resp.json())["error"]
    assert error["code"] == "payload_too_large" and "SERVICEHUB_MAX_ATTACHMENT_BYTES" in error["message"]
    # Without a Content-Length (chunked) the limit holds while reading.

    async def chunks():
        for i in range(0, len(body), 1 << 20):
            yield body[i:i + (1 << 20)].encode()

    resp = await client.post("/api/v1/calls", data=chunks(), headers={**integration, "Content-Type": "application/json"})
    assert resp.status == 413


async def test_a_reply_carries_files_past_the_ordinary_body_limit_up_to_the_attachment_limit(hub, settings):
    """Files travel in base64 inside the reply's JSON: a 3 MiB PDF must go (the ordinary 1 MiB limit
    refused it), and more than SERVICEHUB_MAX_ATTACHMENT_BYTES of files in all is refused by name."""
    client, integration, agent, _ = hub
    msg = {"channel": "api", "external_id": "m-files", "sender": {"address": "ana@example.com", "kind": "email"},
           "text": "Could you send the invoice?"}
    resp = await client.post("/api/v1/messages", json=msg, headers=integration)
    assert resp.status in (200, 201), await resp.text()
    cid = (await resp.json())["conversation_id"]
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * (3 * 4096)
    assert len(pdf) > settings.max_request_bytes
    reply = {"text": "Here it is.", "channel": "email",
             "attachments": [{"filename": "invoice.pdf", "content_type": "application/pdf",
                              "data_base64": base64.b64encode(pdf).decode()}]}
    resp = await client.post(f"/api/v1/conversations/{cid}/replies", json=reply, headers=agent)
    assert resp.status == 201, await resp.text()
    assert [a["size"] for a in (await resp.json())["attachments"]] == [len(pdf)]

    part = base64.b64encode(b"x" * (settings.max_attachment_bytes // 2 + 1)).decode()
    reply["attachments"] = [{"filename": f"part{i}.bin", "content_type": "application/octet-stream", "data_base64": part}
                            for i in range(2)]
    resp = await client.post(f"/api/v1/conversations/{cid}/replies", json=reply, headers=agent)
    assert resp.status == 413
    assert "SERVICEHUB_MAX_ATTACHMENT_BYTES" in (await resp.json())["error"]["message"]
    # Past the route's own limit, refused before the body is read whole.
    big = json.dumps({**reply, "text": "x" * (settings.max_request_bytes + settings.max_attachment_bytes * 2)})
    resp = await client.post(f"/api/v1/conversations/{cid}/replies", data=big, headers={**agent, "Content-Type": "application/json"})
    assert resp.status == 413


async def test_a_compressed_body_counts_as_it_unpacks(hub, settings):
    client, integration, _, _ = hub
    bomb = gzip.compress(json.dumps(call("bomb", "Customer: " + "a" * (settings.max_attachment_bytes + 10))).encode())
    assert len(bomb) < 100_000
    resp = await client.post("/api/v1/calls", data=bomb, headers={**integration, "Content-Type": "application/json",
                                                                  "Content-Encoding": "gzip"})
    assert resp.status == 413


# --- search text ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["\x00", "ana\x00", "\x00' OR 1=1 --", "a\x07b", "\x1b[31m", "\x7f", "\x85x"])
async def test_control_characters_in_q_are_a_bad_request_not_an_outage(hub, q):
    client, _, agent, _ = hub
    resp = await client.get("/api/v1/conversations", params={"q": q}, headers=agent)
    assert resp.status == 400, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "bad_request" and "control character" in error["message"]
    # The inbox list says the same on its page.
    cookies = {"servicehub_session": agent["Authorization"].split()[1]}
    resp = await client.get("/inbox", params={"q": q}, cookies=cookies)
    assert resp.status == 400
    assert "control character" in await resp.text()


async def test_tabs_and_line_breaks_in_q_are_spaces(hub):
    client, integration, agent, _ = hub
    resp = await client.post("/api/v1/messages", headers=integration, json={
        "channel": "api", "external_id": "m1", "sender": {"address": "ana@example.com", "name": "Ana Lima"},
        "subject": "Broken kettle lid", "text": "The lid of my kettle broke"})
    assert resp.status == 201
    page = await (await client.get("/api/v1/conversations", params={"q": "kettle\tlid\r\n"}, headers=agent)).json()
    assert len(page["items"]) == 1
    assert re.search(r"kettle", page["items"][0]["subject"])


def test_search_text():
    assert search_text(None) is None and search_text("  ") is None and search_text("\t\n") is None
    assert search_text(" ana ") == "ana" and search_text("x" * 500) == "x" * 200
    assert search_text("a\tb") == "a b"
    for bad in ("\x00", "\ud800", "a\x1fb"):
        with pytest.raises(UnreadableInput):
            search_text(bad)


@pytest.mark.parametrize("name", ["q", "channel", "status", "segment", "assignee", "customer", "cursor", "limit"])
async def test_no_query_parameter_with_a_nul_reaches_the_store(hub, name):
    client, _, agent, _ = hub
    resp = await client.get("/api/v1/conversations", params={name: "open\x00"}, headers=agent)
    assert 400 <= resp.status < 500, await resp.text()
