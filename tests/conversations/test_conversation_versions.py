"""A conversation's version on a real store (SQLite and PostgreSQL): every write that changes what
agents see bumps it, in the UPDATE itself; a change made on an older version is refused with the
current state and writes nothing; without a version only the fields given change; and of
concurrent changes made on one version exactly one is written."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, text, update

from hub.assignment import rules as assignment
from hub.auth.accounts import create_agent
from hub.config.settings import SlaSettings
from hub.contract import clock
from hub.contract.errors import RejectedInput, StaleVersion
from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.contract.principal import Principal
from hub.conversations.actions import add_note, update_conversation
from hub.conversations.replies import reply
from hub.customers.profiles import merge_customers
from hub.ingest.pipeline import ingest
from hub.privacy.requests import erase_customer
from hub.sla import timers as sla
from hub.store.blobs import BlobStore
from hub.store.db import make_engine
from hub.store.models import AuditLog, Conversation
from hub.web.app import create_app
from tests.support.inbox import sign_in_for_forms

conv_t = Conversation.__table__
audit_t = AuditLog.__table__


@pytest.fixture
def people(engine):
    ids = {name: create_agent(engine, f"{name}@example.com", "a long password", role=role, name=name.title())
           for name, role in [("ada", "admin"), ("bo", "agent"), ("cy", "agent")]}
    who = {name: Principal("agent", aid, "admin" if name == "ada" else "agent", f"{name}@example.com")
           for name, aid in ids.items()}
    return ids, who


def message(n: int, address: str = "ana@example.com", *, answers: int | None = None) -> InboundMessage:
    """The customer's n-th mail; answers: the number of an earlier mail it replies to."""
    thread = ThreadHints(in_reply_to=(f"<v{answers}-{address}>",)) if answers else ThreadHints()
    return InboundMessage(channel="email", external_id=f"<v{n}-{address}>", sender=Sender(address, "Ana Silva"),
                          text=f"question {n}", subject="Where is my kettle?", thread=thread)


def row(engine, cid):
    with engine.connect() as conn:
        return conn.execute(select(conv_t).where(conv_t.c.id == cid)).one()


def version(engine, cid) -> int:
    return row(engine, cid).version


def audits(engine, cid) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(audit_t.c.id).where(audit_t.c.action == "conversation.update",
                                                           audit_t.c.target == f"conversation:{cid}")).all())


def test_every_write_of_what_agents_see_bumps_the_version_and_derived_ones_do_not(engine, people, tmp_path):
    ids, who = people
    first = ingest(engine, message(1))
    cid = first.conversation_id
    assert version(engine, cid) == 1
    # Another message on the open conversation: nothing an agent decides on changed.
    ingest(engine, message(2, answers=1))
    assert version(engine, cid) == 1
    assert update_conversation(engine, cid, {"priority": "high"}, who["bo"])["version"] == 2
    # A first reply: pending, first response.
    reply(engine, cid, who["bo"], "Looking into it.")
    assert (row(engine, cid).status, version(engine, cid)) == ("pending", 3)
    # A second reply on the pending conversation changes nothing agents decide on.
    reply(engine, cid, who["bo"], "Still looking.")
    assert version(engine, cid) == 3
    add_note(engine, cid, who["bo"], "a note is a message, not a change of the conversation")
    assert version(engine, cid) == 3
    # The customer answers: pending -> open.
    ingest(engine, message(3, answers=1))
    assert (row(engine, cid).status, version(engine, cid)) == ("open", 4)
    update_conversation(engine, cid, {"status": "resolved"}, who["bo"])
    assert version(engine, cid) == 5
    # A message within the reopen window reopens it.
    ingest(engine, message(4, answers=1))
    assert (row(engine, cid).status, version(engine, cid)) == ("open", 6)

    # The hub's automatic assignment, then the SLA worker's own bookkeeping (timers: derived).
    rules = sla.build_rules(SlaSettings(assignment="load"))
    sla.run_pass(engine, rules, now=clock.now())
    assert row(engine, cid).assignee_id is not None and version(engine, cid) == 7
    sla.run_pass(engine, rules, now=clock.now() + timedelta(minutes=1))
    sla.recompute_one(engine, cid, rules)
    assert version(engine, cid) == 7
    # Reassignment (as on an SLA breach): the conditional assignment bumps too.
    current = row(engine, cid)
    with engine.begin() as conn:
        assert assignment.assign(conn, current, ids["cy"], now=clock.now(), reason="SLA breach",
                                 only_if_assignee=current.assignee_id)
    assert version(engine, cid) == 8

    # A merge moves the conversation to another customer; an erasure empties its subject.
    other = ingest(engine, message(5, address="ana.s@example.net"))
    merge_customers(engine, other.customer_id, first.customer_id, who["ada"])
    assert (row(engine, cid).customer_id, version(engine, cid)) == (other.customer_id, 9)
    erase_customer(engine, BlobStore(tmp_path / "blobs"), other.customer_id, "test")
    assert (row(engine, cid).subject, version(engine, cid)) == (None, 10)


def test_a_change_made_on_an_older_version_is_refused_with_the_current_state(engine, people):
    ids, who = people
    cid = ingest(engine, message(1)).conversation_id
    seen = update_conversation(engine, cid, {"priority": "low"}, who["bo"])  # what Bo's page shows: version 2
    update_conversation(engine, cid, {"status": "pending"}, who["cy"], expected_version=seen["version"])
    with pytest.raises(StaleVersion) as refused:
        update_conversation(engine, cid, {"status": "resolved", "priority": "urgent"}, who["bo"],
                            expected_version=seen["version"])
    assert refused.value.code == "stale_version"
    assert "version 2" in refused.value.message and "version 3" in refused.value.message
    current = refused.value.detail["conversation"]
    assert refused.value.detail["version"] == current["version"] == 3
    assert (current["status"], current["priority"], current["id"]) == ("pending", "low", cid)
    # Nothing of the refused change was written: not the fields, not the audit log, no survey.
    now = row(engine, cid)
    assert (now.status, now.priority, now.version, now.resolved_at) == ("pending", "low", 3, None)
    assert audits(engine, cid) == 2
    # Made again on the current version, it holds.
    done = update_conversation(engine, cid, {"priority": "urgent"}, who["bo"], expected_version=3)
    assert (done["priority"], done["status"], done["version"]) == ("urgent", "pending", 4)


def test_without_a_version_only_the_fields_given_change(engine, people):
    ids, who = people
    cid = ingest(engine, message(1)).conversation_id
    # The hub assigns by load after the agent's page loaded; the agent then changes the priority.
    sla.run_pass(engine, sla.build_rules(SlaSettings(assignment="load")), now=clock.now())
    assigned = row(engine, cid).assignee_id
    assert assigned is not None
    done = update_conversation(engine, cid, {"priority": "high"}, who["bo"])
    assert (done["priority"], done["assignee_id"], done["status"]) == ("high", assigned, "open")
    # An explicit null still unassigns; unknown fields are the caller's mistake, not ignored.
    assert update_conversation(engine, cid, {"assignee_id": None}, who["bo"])["assignee_id"] is None
    with pytest.raises(RejectedInput, match="version"):
        update_conversation(engine, cid, {"version": 1}, who["bo"])
    # A change that fails its checks writes nothing, version included.
    before = version(engine, cid)
    with pytest.raises(RejectedInput, match="agent 999999"):
        update_conversation(engine, cid, {"assignee_id": 999999, "priority": "low"}, who["bo"], expected_version=before)
    assert version(engine, cid) == before and row(engine, cid).priority == "high"


def test_of_concurrent_changes_made_on_one_version_exactly_one_is_written(db_url, people):
    ids, who = people
    setup = make_engine(db_url)
    cid = ingest(setup, message(1)).conversation_id
    setup.dispose()
    # One engine per writer, as separate hub processes have: on SQLite the per-process write
    # lock does not order them, only the database does.
    writers = 6
    engines = [make_engine(db_url) for _ in range(writers)]
    start = threading.Barrier(writers)
    outcomes: list[str] = [""] * writers
    priorities = ["low", "high", "urgent", "low", "high", "urgent"]

    def change(i: int) -> None:
        start.wait()
        try:
            update_conversation(engines[i], cid, {"priority": priorities[i]}, who["bo"], expected_version=1)
            outcomes[i] = "written"
        except StaleVersion as exc:
            outcomes[i] = f"stale at {exc.detail['version']}"

    threads = [threading.Thread(target=change, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for e in engines:
        e.dispose()
    assert outcomes.count("written") == 1, outcomes
    assert outcomes.count("stale at 2") == writers - 1, outcomes
    check = make_engine(db_url)
    try:
        now = row(check, cid)
        assert now.version == 2 and now.priority == priorities[outcomes.index("written")]
        assert audits(check, cid) == 1
    finally:
        check.dispose()


def test_postgresql_a_change_waiting_on_the_row_is_refused_once_the_other_commits(db_url, people):
    """The check is the UPDATE's own WHERE: a change that read version 1 while another change of
    version 1 held the row is refused when that one commits (PostgreSQL re-reads the row a waiting
    UPDATE finds changed), not written over it."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite lets one writer at a time in: the waiting is PostgreSQL's")
    ids, who = people
    engine = make_engine(db_url)
    try:
        cid = ingest(engine, message(1)).conversation_id
        holder = engine.connect()
        tx = holder.begin()
        holder.execute(update(conv_t).where(conv_t.c.id == cid, conv_t.c.version == 1)
                       .values(status="resolved", version=conv_t.c.version + 1))
        outcome: dict = {}

        def second() -> None:
            try:
                update_conversation(engine, cid, {"priority": "urgent"}, who["bo"], expected_version=1)
                outcome["result"] = "written"
            except StaleVersion as exc:
                outcome["result"] = exc.detail["conversation"]

        waiter = threading.Thread(target=second)
        waiter.start()
        # Wait until the second change is blocked on the row (it has read version 1 by then).
        for _ in range(600):
            with engine.connect() as conn:
                blocked = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                            "AND query LIKE 'UPDATE conversation%'")).scalar()
            if blocked:
                break
            time.sleep(0.05)
        assert blocked, "the second change never waited on the row"
        tx.commit()
        holder.close()
        waiter.join(30)
        assert outcome["result"] != "written"
        assert (outcome["result"]["status"], outcome["result"]["priority"], outcome["result"]["version"]) == ("resolved", "normal", 2)
        now = row(engine, cid)
        assert (now.status, now.priority, now.version) == ("resolved", "normal", 2)
    finally:
        engine.dispose()


# --- the REST API: ETag, If-Match, version ---------------------------------------------------------


@pytest.fixture
async def api(settings):
    # No background loops: routing (an intent) and assignment would change the conversations these
    # tests count versions of, at moments of their own.
    app = create_app(settings.model_copy(update={"outbox_inline_worker": False}))
    engine = make_engine(settings.effective_database_url)
    ids = {name: create_agent(engine, f"{name}@example.com", f"{name} password", role="agent", name=name.title())
           for name in ("bo", "cy")}
    client = TestClient(TestServer(app))
    await client.start_server()
    tokens = {}
    for name in ids:
        resp = await client.post("/api/v1/auth/login", json={"email": f"{name}@example.com", "password": f"{name} password"})
        tokens[name] = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    client.session.cookie_jar.clear()
    client.engine, client.ids, client.tokens = engine, ids, tokens
    yield client
    await client.close()
    engine.dispose()


async def refused(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    return (await resp.json())["error"]


async def test_api_get_gives_an_etag_and_a_patch_on_it_is_written(api):
    cid = ingest(api.engine, message(1)).conversation_id
    url = f"/api/v1/conversations/{cid}"
    got = await api.get(url, headers=api.tokens["bo"])
    assert got.headers["ETag"] == 'W/"1"' and (await got.json())["version"] == 1
    listed = await (await api.get("/api/v1/conversations", headers=api.tokens["bo"])).json()
    assert listed["items"][0]["version"] == 1
    done = await api.patch(url, json={"priority": "high"}, headers={**api.tokens["bo"], "If-Match": got.headers["ETag"]})
    assert done.status == 200 and done.headers["ETag"] == 'W/"2"'
    assert (await done.json())["priority"] == "high"
    # The strong form of the tag and the body's version field do the same.
    done = await api.patch(url, json={"status": "pending"}, headers={**api.tokens["bo"], "If-Match": '"2"'})
    assert done.status == 200 and done.headers["ETag"] == 'W/"3"'
    done = await api.patch(url, json={"status": "open", "version": 3}, headers=api.tokens["bo"])
    assert done.status == 200 and (await done.json())["version"] == 4


async def test_api_a_stale_change_is_409_with_the_current_state_and_writes_nothing(api):
    cid = ingest(api.engine, message(1)).conversation_id
    url = f"/api/v1/conversations/{cid}"
    etag = (await api.get(url, headers=api.tokens["bo"])).headers["ETag"]
    # Cy changes the status meanwhile.
    assert (await api.patch(url, json={"status": "pending", "version": 1}, headers=api.tokens["cy"])).status == 200
    for attempt in ({"headers": {"If-Match": etag}, "json": {"priority": "urgent"}},
                    {"headers": {}, "json": {"priority": "urgent", "version": 1}}):
        resp = await api.patch(url, json=attempt["json"], headers={**api.tokens["bo"], **attempt["headers"]})
        error = await refused(resp, 409)
        assert resp.headers["ETag"] == 'W/"2"'
        assert error["code"] == "stale_version" and "nothing was changed" in error["message"]
        assert error["detail"]["version"] == 2
        current = error["detail"]["conversation"]
        assert (current["id"], current["status"], current["priority"], current["version"]) == (cid, "pending", "normal", 2)
    conv = await (await api.get(url, headers=api.tokens["bo"])).json()
    assert (conv["status"], conv["priority"], conv["version"]) == ("pending", "normal", 2)


async def test_api_without_a_precondition_only_the_fields_sent_change(api):
    cid = ingest(api.engine, message(1)).conversation_id
    url = f"/api/v1/conversations/{cid}"
    # The hub assigns by load after the client read the conversation.
    sla.run_pass(api.engine, sla.build_rules(SlaSettings(assignment="load")), now=clock.now())
    assigned = row(api.engine, cid).assignee_id
    assert assigned in api.ids.values()
    for headers in ({}, {"If-Match": "*"}):
        resp = await api.patch(url, json={"priority": "high"}, headers={**api.tokens["bo"], **headers})
        conv = await resp.json()
        assert resp.status == 200 and conv["priority"] == "high" and conv["assignee_id"] == assigned


async def test_api_refuses_preconditions_it_cannot_read(api):
    cid = ingest(api.engine, message(1)).conversation_id
    url = f"/api/v1/conversations/{cid}"
    for if_match in ("1", "W/1", '"abc"', 'W/"0"', '"99999999999"', 'W/"1", W/"2"', '"1' + "0" * 300 + '"', ""):
        error = await refused(await api.patch(url, json={"priority": "low"}, headers={**api.tokens["bo"], "If-Match": if_match}), 400)
        assert "If-Match" in error["message"], if_match
    error = await refused(await api.patch(url, json={"priority": "low", "version": 2},
                                          headers={**api.tokens["bo"], "If-Match": 'W/"1"'}), 400)
    assert "version 1" in error["message"] and "version 2" in error["message"]
    for body, needle in (({"version": 1}, "at least one"), ({"priority": "low", "version": 0}, "version"),
                         ({"priority": "low", "version": 2**31}, "version"), ({"priority": "low", "version": None, "x": 1}, "x")):
        error = await refused(await api.patch(url, json=body, headers=api.tokens["bo"]), 422)
        assert needle in error["message"], body
    # A guessed id is 404 whatever the precondition.
    await refused(await api.patch("/api/v1/conversations/999999", json={"priority": "low", "version": 1},
                                  headers=api.tokens["bo"]), 404)
    assert row(api.engine, cid).version == 1 and row(api.engine, cid).priority == "normal"


# --- the inbox's side panel without a browser ------------------------------------------------------


def side_form(html: str) -> dict:
    """The side panel's form fields as the page renders them (what a browser without script posts)."""
    form = re.search(r'<form [^>]*id="side-fields".*?</form>', html, re.S).group(0)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    for name, options in re.findall(r'<select id="[^"]+" name="([^"]+)">(.*?)</select>', form, re.S):
        fields[name] = re.search(r'<option value="([^"]+)" selected', options).group(1)
    return fields


async def test_the_form_without_script_applies_only_the_fields_changed(api):
    cid = ingest(api.engine, message(1)).conversation_id
    csrf = await sign_in_for_forms(api, "bo@example.com", "bo password")
    form = side_form(await (await api.get(f"/inbox/c/{cid}")).text())
    assert form["version"] == "1" and form["was_assignee"] == form["assignee"] == "none"
    # Cy assigns herself meanwhile through the API (no version: last write wins per field).
    await api.patch(f"/api/v1/conversations/{cid}", json={"assignee_id": api.ids["cy"]}, headers=api.tokens["cy"])
    # Bo's stale form posts every field, priority changed: refused, and the page shows what is there now.
    resp = await api.post(f"/inbox/c/{cid}/update", data={**form, "priority": "high"}, allow_redirects=False)
    assert resp.status == 409
    html = await resp.text()
    assert "Not saved" in html and "priority to high" in html and "assigned to Cy" in html
    now = side_form(html)
    assert (now["version"], now["assignee"], now["priority"]) == ("2", str(api.ids["cy"]), "normal")
    assert (row(api.engine, cid).assignee_id, row(api.engine, cid).priority) == (api.ids["cy"], "normal")
    # Made again on the page now shown: the priority changes, Cy stays the assignee.
    resp = await api.post(f"/inbox/c/{cid}/update", data={**now, "priority": "high"}, allow_redirects=False)
    assert resp.status == 303
    assert (row(api.engine, cid).assignee_id, row(api.engine, cid).priority, row(api.engine, cid).version) == (api.ids["cy"], "high", 3)
    # Nothing changed: nothing written, whatever the version says.
    again = side_form(await (await api.get(f"/inbox/c/{cid}")).text())
    resp = await api.post(f"/inbox/c/{cid}/update", data={**again, "version": "1"}, allow_redirects=False)
    assert resp.status == 303 and row(api.engine, cid).version == 3
    assert csrf


async def test_the_page_script_saves_one_field_and_gets_json(api):
    cid = ingest(api.engine, message(1)).conversation_id
    csrf = await sign_in_for_forms(api, "bo@example.com", "bo password")
    script = {"X-CSRF-Token": csrf, "Accept": "application/json"}
    resp = await api.post(f"/inbox/c/{cid}/update", data={"version": "1", "status": "pending", "was_status": "open"},
                          headers=script)
    assert resp.status == 200
    state = (await resp.json())["state"]
    assert state == {"id": cid, "version": 2, "status": "pending", "priority": "normal", "assignee_id": None, "assignee_name": None}
    assert await (await api.get(f"/inbox/c/{cid}/state")).json() == state
    # A change on version 1 again: 409, the current state, and a message for the agent.
    resp = await api.post(f"/inbox/c/{cid}/update", data={"version": "1", "assignee": "me", "was_assignee": "none"},
                          headers=script)
    body = await resp.json()
    assert resp.status == 409 and body["state"] == state and body["error"]["code"] == "stale_version"
    assert "assignee to Bo" in body["error"]["message"] and "status pending" in body["error"]["message"]
    # Other refusals come as JSON too; the session and the CSRF token are still required.
    resp = await api.post(f"/inbox/c/{cid}/update", data={"version": "2", "priority": "nope"}, headers=script)
    assert resp.status == 422 and "priority must be one of" in (await resp.json())["error"]["message"]
    resp = await api.post(f"/inbox/c/{cid}/update", data={"version": "x", "priority": "low"}, headers=script)
    assert resp.status == 422 and "version" in (await resp.json())["error"]["message"]
    resp = await api.post(f"/inbox/c/{cid}/update", data={"version": "2", "priority": "low"},
                          headers={"Accept": "application/json"})
    assert resp.status == 403
    assert (await api.get("/inbox/c/999999/state")).status == 404
    assert row(api.engine, cid).version == 2
