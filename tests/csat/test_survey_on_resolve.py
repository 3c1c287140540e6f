"""The satisfaction survey as the agent decides it on a resolve, on SQLite and PostgreSQL: what a
resolve would do is known beforehand (to whom it goes), a resolve can skip it, and a conversation no
agent answered gets a survey only when the resolve confirms it; the same through the REST API."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from hub.auth.accounts import create_agent
from hub.config.settings import Settings
from hub.contract.errors import NotFound
from hub.contract.messages import InboundMessage, Sender
from hub.contract.principal import Principal
from hub.conversations.actions import update_conversation
from hub.conversations.replies import reply
from hub.csat import surveys as csat
from hub.ingest.pipeline import ingest
from hub.store.db import make_engine, read_tx
from hub.store.models import CsatSurvey
from hub.web.app import create_app

pytestmark = pytest.mark.timeout(90)


def _question(engine, n: int, address: str = "chloe@example.com"):
    return ingest(engine, InboundMessage(channel="email", external_id=f"<q{n}@example.com>", sender=Sender(address, "Chloé Martin"),
                                         subject="Parcel", text="Where is my parcel?"))


def _surveyed(engine) -> set[int]:
    with read_tx(engine) as conn:
        return set(conn.execute(select(CsatSurvey.__table__.c.conversation_id)).scalars())


@pytest.fixture
def admin(engine) -> Principal:
    agent_id = create_agent(engine, "ada@example.com", "ada password", role="admin", name="Ada")
    csat.configure(engine, Settings(public_url="https://hub.example"))
    return Principal("agent", agent_id, "admin", "ada@example.com")


def test_a_conversation_nobody_answered_gets_no_survey_unless_confirmed(engine, admin):
    quiet, confirmed = _question(engine, 1), _question(engine, 2)
    before = csat.survey_on_resolve_of(engine, quiet.conversation_id)
    assert before["possible"] and not before["would_send"] and before["needs_confirmation"]
    assert before["recipient"] == "chloe@example.com" and not before["answered"]
    update_conversation(engine, quiet.conversation_id, {"status": "resolved"}, admin)
    update_conversation(engine, confirmed.conversation_id, {"status": "resolved"}, admin, survey=True)
    assert _surveyed(engine) == {confirmed.conversation_id}
    after = csat.survey_on_resolve_of(engine, confirmed.conversation_id)
    assert not after["possible"] and "before" in after["reason"]


def test_an_answered_conversation_sends_it_and_the_agent_can_skip_it(engine, admin):
    answered, skipped = _question(engine, 1), _question(engine, 2, "dan@example.com")
    for result in (answered, skipped):
        reply(engine, result.conversation_id, admin, "It left our warehouse today.")
    plan = csat.survey_on_resolve_of(engine, answered.conversation_id)
    assert plan["would_send"] and not plan["needs_confirmation"] and plan["channel"] == "email"
    update_conversation(engine, answered.conversation_id, {"status": "resolved"}, admin)
    update_conversation(engine, skipped.conversation_id, {"status": "resolved"}, admin, survey=False)
    assert _surveyed(engine) == {answered.conversation_id}


def test_survey_flag_without_a_resolve_changes_nothing_and_unknown_ids_are_404(engine, admin):
    result = _question(engine, 1)
    update_conversation(engine, result.conversation_id, {"priority": "high"}, admin, survey=True)
    assert _surveyed(engine) == set()
    with pytest.raises(NotFound):
        csat.survey_on_resolve_of(engine, 987654)


async def test_the_api_says_beforehand_and_takes_the_flag(settings):
    settings = settings.model_copy(update={"public_url": "https://hub.example"})
    app = create_app(settings)
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "bo@example.com", "bo password", role="agent")
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        login = await client.post("/api/v1/auth/login", json={"email": "bo@example.com", "password": "bo password"})
        headers = {"Authorization": f"Bearer {(await login.json())['token']}"}
        client.session.cookie_jar.clear()  # the bearer token only
        first, second = _question(engine, 1), _question(engine, 2, "dan@example.com")
        resp = await client.get(f"/api/v1/conversations/{first.conversation_id}/survey", headers=headers)
        body = await resp.json()
        assert resp.status == 200 and body["needs_confirmation"] and body["recipient"] == "chloe@example.com"
        assert (await client.get("/api/v1/conversations/99999/survey", headers=headers)).status == 404
        assert (await client.get(f"/api/v1/conversations/{first.conversation_id}/survey")).status == 401
        resp = await client.patch(f"/api/v1/conversations/{first.conversation_id}", json={"status": "resolved"}, headers=headers)
        assert resp.status == 200
        resp = await client.patch(f"/api/v1/conversations/{second.conversation_id}", json={"status": "resolved", "survey": True},
                                  headers=headers)
        assert resp.status == 200
        assert _surveyed(engine) == {second.conversation_id}
        resp = await client.patch(f"/api/v1/conversations/{second.conversation_id}", json={"survey": "yes please"}, headers=headers)
        assert resp.status == 422
        resp = await client.patch(f"/api/v1/conversations/{second.conversation_id}", json={"survey": False}, headers=headers)
        assert resp.status == 422  # a flag alone changes nothing: the body must change a field
    finally:
        await client.close()
        engine.dispose()
