"""Phone calls end to end: POST /api/v1/calls and the drop folder, through a real aiohttp server,
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from channels.base import PermanentFailure
from channels.voice import VoiceChannel, dropfolder, from_settings
from hub.auth.accounts import create_agent, create_token
from hub.config.settings import Settings
from hub.contract import clock
from hub.contract.messages import OutboundMessage
from hub.gateway.registry import ADAPTERS, build_registry
from hub.store.db import make_engine
from hub.store.models import Message
from hub.web.app import create_app
from tests.conftest import FIXTURES

VOICE = FIXTURES / "voice"
CALLER = "+442079460958"
WAIT_SECONDS = 15


@dataclass
class Hub:
    client: TestClient
    integration: dict
    admin: dict
    engine: object
    drop: Path

    async def post_call(self, **body):
        body.setdefault("call_id", "call-1")
        body.setdefault("caller", CALLER)
        body.setdefault("callee", "+442071234567")
        body.setdefault("direction", "inbound")
        body.setdefault("started_at", "2024-05-01T10:15:00Z")
        if "turns" not in body and "transcript" not in body:
            body["transcript"] = "Agent: Thank you for calling, how can I help?\nCustomer: Where is my order 1234?"
        return await self.client.post("/api/v1/calls", json=body, headers=self.integration)

    async def get(self, path: str, headers: dict | None = None):
        resp = await self.client.get(path, headers=headers or self.admin)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    def stored_messages(self) -> list:
        with self.engine.connect() as conn:
            return conn.execute(select(Message.__table__).where(Message.__table__.c.channel == "voice")).all()


@pytest.fixture
async def hub(settings, tmp_path):
    drop = tmp_path / "drop"
    registry = build_registry(settings)
    # Short waits so the drop-folder tests take a second, not a minute.
    registry.register(VoiceChannel(drop, poll_seconds=0.05, settle_seconds=0, orphan_seconds=0.5), "voice")
    app = create_app(settings, registry=registry)
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "admin@example.com", "admin password", role="admin")
    integration = create_token(engine, "pbx", role="integration")
    client = TestClient(TestServer(app))
    await client.start_server()
    resp = await client.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": "admin password"})
    admin = (await resp.json())["token"]
    client.session.cookie_jar.clear()
    yield Hub(client, {"Authorization": f"Bearer {integration}"}, {"Authorization": f"Bearer {admin}"}, engine, drop)
    await client.close()
    engine.dispose()


async def error_of(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]
    return body["error"]


async def until(condition, what: str):
    """Wait for an async condition, at most WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# --- the API ----------------------------------------------------------------------------------


async def test_a_call_becomes_a_conversation_of_the_callers_phone_identity(hub):
    pca = json.loads((VOICE / "aws-pca-testfile.json").read_text())
    resp = await hub.post_call(
        call_id="pca-1", caller="+44 20 7946 0958", ended_at="2024-05-01T10:15:29Z", transcript=pca,
        recording_url="https://pbx.example/rec/pca-1.wav", customer_name="Ana Silva", agent="Sam",
    )
    assert resp.status == 201, await resp.text()
    ids = await resp.json()
    assert ids["created"] is True and set(ids) == {"customer_id", "conversation_id", "message_id", "created"}

    customer = await hub.get(f"/api/v1/customers/{ids['customer_id']}")
    assert [(i["kind"], i["address"]) for i in customer["identities"]] == [("phone", CALLER)]
    assert customer["name"] == "Ana Silva"
    page = await hub.get(f"/api/v1/conversations?customer={ids['customer_id']}")
    assert [(c["id"], c["channel"], c["subject"]) for c in page["items"]] == [(ids["conversation_id"], "voice", f"Call from {CALLER}")]

    conversation = await hub.get(f"/api/v1/conversations/{ids['conversation_id']}")
    [message] = conversation["messages"]
    assert message["channel"] == "voice" and message["external_id"] == "pca-1" and message["direction"] == "inbound"
    assert message["sender"]["kind"] == "phone" and message["sender"]["address"] == CALLER
    assert message["sent_at"].startswith("2024-05-01T10:15:00")
    lines = message["text"].splitlines()
    assert lines[0] == "[00:00] Agent: MM."
    assert lines[1] == "[00:00] Customer: Thank you for calling Networks abc technical Support."
    assert lines[11] == "[00:27] Customer: Do you want me to just tell you the meeting I'd be?"
    assert lines[-1] == "Recording: https://pbx.example/rec/pca-1.wav"

    [row] = hub.stored_messages()
    meta = row.metadata
    assert meta["call"]["call_id"] == "pca-1" and meta["call"]["direction"] == "inbound"
    assert meta["call"]["caller"] == CALLER and meta["call"]["callee"] == "+442071234567"
    assert meta["call"]["duration_seconds"] == 29 and meta["call"]["language"] == "en-US"
    assert meta["call"]["agent"] == "Sam" and meta["call"]["source"] == "api"
    assert meta["transcript"] == {"format": "aws_pca", "roles": "transcript"}
    assert len(meta["turns"]) == 12
    assert meta["turns"][1] == {
        "role": "customer", "speaker": "Customer", "start": 0.64, "end": 3.7,
        "text": "Thank you for calling Networks abc technical Support.", "sentiment": "positive",
    }
    assert meta["customer_text"].startswith("Thank you for calling Networks abc technical Support.\nThis is [PII] speaking.")
    assert meta["customer_text"].endswith("Do you want me to just tell you the meeting I'd be?")
    assert meta["customer_text"].count("\n") == 5
    assert meta["raw_sha256"]  # the transcript as received, kept for audit


async def test_structured_turns_and_an_outbound_call_whose_callee_is_the_customer(hub):
    resp = await hub.post_call(
        call_id="out-7", direction="outbound", caller="2001", callee="tel:+1-415-555-0123",
        turns=[
            {"role": "customer", "start": 1.2, "text": "Hello?"},
            {"role": "agent", "speaker": "Sam", "start": 2.5, "end": 6, "text": "Hi, this is Sam from Acme about your return."},
            {"role": "customer", "start": 7.9, "text": "Oh great,  thanks.", "sentiment": "positive"},
        ],
    )
    assert resp.status == 201, await resp.text()
    ids = await resp.json()
    customer = await hub.get(f"/api/v1/customers/{ids['customer_id']}")
    assert [(i["kind"], i["address"]) for i in customer["identities"]] == [("phone", "+14155550123")]
    conversation = await hub.get(f"/api/v1/conversations/{ids['conversation_id']}")
    assert conversation["subject"] == "Call to +14155550123"
    assert conversation["messages"][0]["text"] == (
        "[00:01] Customer: Hello?\n[00:02] Agent (Sam): Hi, this is Sam from Acme about your return.\n[00:07] Customer: Oh great, thanks."
    )
    [row] = hub.stored_messages()
    assert row.metadata["customer_text"] == "Hello?\nOh great, thanks."
    assert row.metadata["call"]["caller"] == "2001"  # our extension, kept as given
    assert row.metadata["transcript"] == {"format": "turns", "roles": "transcript"}


async def test_the_same_call_twice_is_stored_once(hub):
    first = await hub.post_call(call_id="dup-1")
    again = await hub.post_call(call_id="dup-1")
    assert first.status == 201 and again.status == 200
    a, b = await first.json(), await again.json()
    assert b["created"] is False and {k: a[k] for k in ("customer_id", "conversation_id", "message_id")} == {
        k: b[k] for k in ("customer_id", "conversation_id", "message_id")
    }
    assert len(hub.stored_messages()) == 1
    conversation = await hub.get(f"/api/v1/conversations/{a['conversation_id']}")
    assert len(conversation["messages"]) == 1


async def test_a_call_naming_a_conversation_joins_it_and_one_naming_none_starts_its_own(hub):
    first = await (await hub.post_call(call_id="c-1")).json()
    joined = await (await hub.post_call(call_id="c-2", conversation_id=first["conversation_id"])).json()
    separate = await (await hub.post_call(call_id="c-3")).json()
    assert joined["conversation_id"] == first["conversation_id"]
    assert separate["conversation_id"] != first["conversation_id"]
    assert first["customer_id"] == joined["customer_id"] == separate["customer_id"]
    conversation = await hub.get(f"/api/v1/conversations/{first['conversation_id']}")
    assert [m["external_id"] for m in conversation["messages"]] == ["c-1", "c-2"]
    # Another caller cannot attach a call to this customer's conversation by naming it.
    other = await (await hub.post_call(call_id="c-4", caller="+14155550123", conversation_id=first["conversation_id"])).json()
    assert other["conversation_id"] != first["conversation_id"]


async def test_diarized_speakers_without_roles_leave_the_customer_text_to_all_turns(hub):
    resp = await hub.post_call(call_id="tx-1", transcript=(VOICE / "aws-transcribe-diarization.json").read_text(),
                               transcript_filename="job.json")
    assert resp.status == 201, await resp.text()
    [row] = hub.stored_messages()
    assert row.text == "[00:04] spk_0: I've been on hold for an hour.\n[00:08] spk_1: Sorry about that."
    assert row.metadata["transcript"] == {"format": "aws_transcribe", "roles": "unknown"}
    assert row.metadata["customer_text"] == "I've been on hold for an hour.\nSorry about that."
    assert row.metadata["customer_text_from"] == "all turns"


async def test_bad_input_gets_clear_4xx_never_a_500(hub):
    url, auth = "/api/v1/calls", hub.integration
    err = await error_of(await hub.client.post(url, data=b"{not json", headers={**auth, "Content-Type": "application/json"}), 400)
    assert "not valid JSON" in err["message"]
    err = await error_of(await hub.client.post(url, json={"call_id": "x"}, headers=auth), 422)
    assert err["code"] == "validation_error" and "caller" in err["message"]
    err = await error_of(await hub.post_call(caller="020 7946 0958"), 422)
    assert err["code"] == "rejected_input" and "caller" in err["message"] and "country code" in err["message"]
    err = await error_of(await hub.post_call(caller="+44 12"), 422)
    assert "not a possible phone number" in err["message"]
    # For an outbound call it is the callee that must be the customer's number.
    err = await error_of(await hub.post_call(direction="outbound", caller=CALLER, callee="reception"), 422)
    assert "callee" in err["message"]
    err = await error_of(await hub.post_call(transcript="Hello, I am writing about my order."), 422)
    assert err["code"] == "unknown_transcript_format"
    for name in ("WebVTT", "Amazon Transcribe", "Deepgram", "AssemblyAI", "Whisper", "'Agent: ...'"):
        assert name in err["message"]
    err = await error_of(await hub.post_call(transcript={"results": {"nothing": 1}}), 422)
    assert err["code"] == "unknown_transcript_format"
    err = await error_of(await hub.post_call(transcript="WEBVTT\n\n00:01.000 --> 00:02.000\nhi", transcript_format="deepgram"), 422)
    assert err["code"] == "malformed_transcript"
    err = await error_of(await hub.post_call(turns=[{"role": "customer", "text": "hi"}], transcript="Agent: hi"), 422)
    assert "one of them" in err["message"]
    err = await error_of(await hub.post_call(started_at="2024-05-01T10:15:00"), 422)  # no time zone
    assert "started_at" in err["message"]
    err = await error_of(await hub.post_call(started_at="2024-05-01T10:15:00Z", ended_at="2024-05-01T10:00:00Z"), 422)
    assert "before started_at" in err["message"]
    err = await error_of(await hub.post_call(turns=[{"role": "boss", "text": "hi"}]), 422)
    assert "turns.0.role" in err["message"]
    err = await error_of(await hub.post_call(turns=[{"text": "hi", "start": float("nan")}]), 422)
    # A transcript is a document: up to the attachment limit (an hour's is ~2.3 MB), not the 1 MiB of JSON.
    big = {"call_id": "big", "transcript": "Agent: " + "x" * (Settings().max_attachment_bytes + 1)}
    err = await error_of(await hub.client.post(url, json=big, headers=auth), 413)
    assert err["code"] == "payload_too_large"
    await error_of(await hub.client.post(url, json={}), 401)
    await error_of(await hub.client.post(url, json={}, headers=hub.admin), 403)
    assert hub.stored_messages() == []


# --- replies ----------------------------------------------------------------------------------


async def test_a_reply_on_a_call_goes_by_email_or_is_refused_with_the_reason(hub):
    # The channel itself cannot answer in writing...
    with pytest.raises(PermanentFailure, match="cannot be answered in writing"):
        await VoiceChannel().send(OutboundMessage(1, "voice", CALLER, "hello", "k1"))
    # ...so the hub never asks it: a caller known only by phone gets a clear 422, nothing queued.
    ids = await (await hub.post_call(call_id="r-1")).json()
    url = f"/api/v1/conversations/{ids['conversation_id']}/replies"
    resp = await hub.client.post(url, json={"text": "We'll ship today."}, headers=hub.admin)
    assert resp.status == 422, await resp.text()
    assert "no email address" in (await resp.json())["error"]["message"]
    # Once the customer also wrote by email, the reply goes there.
    await hub.client.post("/api/v1/messages", headers=hub.integration, json={
        "channel": "email", "external_id": "<after-call@x>", "sender": {"address": "caller@example.com"}, "text": "hi"})
    other = await (await hub.client.post("/api/v1/messages", headers=hub.integration, json={
        "channel": "email", "external_id": "<after-call2@x>", "sender": {"address": "caller@example.com"}, "text": "x"})).json()
    from hub.contract.principal import Principal
    from hub.customers.profiles import merge_customers

    merge_customers(hub.engine, ids["customer_id"], other["customer_id"], Principal("agent", 1, "admin", "admin@example.com"))
    resp = await hub.client.post(url, json={"text": "We'll ship today."}, headers=hub.admin)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["channel"] == "email"


def test_the_channel_is_on_without_a_drop_folder_and_the_registry_builds_it(settings, tmp_path, monkeypatch):
    channel = from_settings(settings)
    assert isinstance(channel, VoiceChannel) and channel.name == "voice" and channel.drop_dir is None
    monkeypatch.setitem(ADAPTERS, "voice", "channels.voice")  # the entry hub/gateway/registry.py gets
    registry = build_registry(settings.model_copy(update={"voice_drop_dir": tmp_path / "calls"}))
    voice = registry.get("voice")
    assert isinstance(voice, VoiceChannel) and voice.drop_dir == tmp_path / "calls"


# --- the drop folder --------------------------------------------------------------------------


def put(path: Path, data: bytes) -> None:
    """Drop a file the way the drop folder asks: written under a hidden name, then renamed."""
    hidden = path.with_name("." + path.name)
    hidden.write_bytes(data)
    hidden.replace(path)


def test_the_drop_folder_measures_ages_by_its_own_clock(tmp_path):
    # File times come from the file system; neither the hub's clock (pinned here far away) nor this
    # machine's decides when a file has settled.
    fresh, older = tmp_path / f"{CALLER}_fresh.txt", tmp_path / f"{CALLER}_older.txt"
    put(fresh, b"[00:01] Customer: Hello?\n")
    put(older, b"[00:01] Customer: Hello?\n")
    settled_at = older.stat().st_mtime - 5  # finished 5 s ago by the folder's clock
    os.utime(older, (settled_at, settled_at))
    with clock.use(clock.FixedClock(datetime(2001, 1, 1, tzinfo=UTC))):
        assert [item.name for item in dropfolder.pending(tmp_path, settle_seconds=2)] == [older.name]
    assert settled_at + 5 <= dropfolder.folder_time(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fresh.name, older.name])  # the probe is gone


def sidecar(**record) -> bytes:
    record.setdefault("caller", CALLER)
    record.setdefault("callee", "+442071234567")
    record.setdefault("direction", "inbound")
    record.setdefault("started_at", "2024-05-02T09:00:00+01:00")
    return json.dumps(record).encode()


async def test_the_drop_folder_takes_a_transcript_with_its_sidecar(hub):
    hub.drop.mkdir(exist_ok=True)
    put(hub.drop / "teams-42.call.json", sidecar(call_id="teams-42", customer_name="Adrian"))
    put(hub.drop / "teams-42.vtt", (VOICE / "webvtt" / "teams_timeframe.vtt").read_bytes())
    put(hub.drop / "+14155550123_2024-05-02.txt",
        b"[00:01] Agent: Thanks for calling Acme.\n[00:04] Customer: Is my refund through?\n")
    put(hub.drop / "upload.vtt.part", b"WEBVTT\n")  # still being written: left alone

    async def stored():
        rows = hub.stored_messages()
        return rows if len(rows) == 2 else None

    rows = {r.external_id: r for r in await until(stored, "both files to be stored")}
    teams = rows["teams-42"]
    assert teams.text == "[00:00] Yuri Bakulin: There you go.\n[00:00] Adrian Petrescu: Why hello there, Yuri."
    assert teams.metadata["call"]["source"] == "file:teams-42.vtt"
    assert teams.metadata["call"]["started_at"] == "2024-05-02T08:00:00+00:00"
    named = rows["+14155550123_2024-05-02"]
    assert named.text == "[00:01] Agent: Thanks for calling Acme.\n[00:04] Customer: Is my refund through?"
    assert named.metadata["customer_text"] == "Is my refund through?"

    page = await hub.get("/api/v1/conversations?channel=voice")
    assert sorted(c["subject"] for c in page["items"]) == sorted([f"Call from {CALLER}", "Call from +14155550123"])

    async def moved():
        names = sorted(p.name for p in (hub.drop / "done").iterdir()) if (hub.drop / "done").exists() else []
        return names if len(names) == 3 else None

    done = await until(moved, "files moved to done/")
    assert done == ["+14155550123_2024-05-02.txt", "teams-42.call.json", "teams-42.vtt"]
    # Hidden names are the writers' (and the poller's clock probe), never taken.
    assert sorted(p.name for p in hub.drop.iterdir() if not p.name.startswith(".")) == ["done", "upload.vtt.part"]

    # The same file dropped again is recognised: still one message per call.
    put(hub.drop / "teams-42.call.json", sidecar(call_id="teams-42", customer_name="Adrian"))
    put(hub.drop / "teams-42.vtt", (VOICE / "webvtt" / "teams_timeframe.vtt").read_bytes())
    await until(lambda: _async(not (hub.drop / "teams-42.vtt").exists()), "the second drop to be taken")
    await asyncio.sleep(0.3)
    assert len(hub.stored_messages()) == 2


async def _async(value):
    return value


async def test_a_sidecar_alone_holding_the_transcript_is_a_call(hub):
    hub.drop.mkdir(exist_ok=True)
    put(hub.drop / "solo.call.json",
        sidecar(call_id="solo-1", turns=[{"role": "customer", "text": "Please cancel my subscription."}]))
    rows = await until(lambda: _async(hub.stored_messages()), "the sidecar to be stored")
    assert rows[0].text == "Customer: Please cancel my subscription."


async def test_bad_files_end_in_rejected_with_their_reason(hub):
    hub.drop.mkdir(exist_ok=True)
    put(hub.drop / "memo.call.json", sidecar(call_id="memo-1"))
    put(hub.drop / "memo.txt", b"Dear team, please call the customer back tomorrow.")
    put(hub.drop / "badnumber.call.json", sidecar(call_id="bn-1", caller="not a number"))
    put(hub.drop / "badnumber.vtt", (VOICE / "webvtt" / "teams_timeframe.vtt").read_bytes())
    put(hub.drop / "lonely.vtt", (VOICE / "webvtt" / "sample.vtt").read_bytes())  # no sidecar, no number

    async def rejected_files():
        folder = hub.drop / "rejected"
        names = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
        return names if len([n for n in names if n.endswith(".reason.txt")]) == 3 else None

    names = await until(rejected_files, "the three bad files to be rejected")
    assert names == [
        "badnumber.call.json", "badnumber.vtt", "badnumber.vtt.reason.txt",
        "lonely.vtt", "lonely.vtt.reason.txt",
        "memo.call.json", "memo.txt", "memo.txt.reason.txt",
    ]
    reasons = {n: (hub.drop / "rejected" / n).read_text() for n in names if n.endswith(".reason.txt")}
    assert "supported transcript formats" in reasons["memo.txt.reason.txt"]
    assert "caller" in reasons["badnumber.vtt.reason.txt"] and "not a phone number" in reasons["badnumber.vtt.reason.txt"]
    assert "no sidecar lonely.call.json" in reasons["lonely.vtt.reason.txt"]

    items = (await hub.get("/api/v1/inbound/rejected?channel=voice"))["items"]
    by_key = {i["key"].split(":")[1]: i for i in items}
    assert set(by_key) == {"memo.txt", "badnumber.vtt", "lonely.vtt"}
    assert "supported transcript formats" in by_key["memo.txt"]["reason"]
    assert by_key["memo.txt"]["raw_sha256"] and by_key["memo.txt"]["channel"] == "voice"
    assert hub.stored_messages() == []
