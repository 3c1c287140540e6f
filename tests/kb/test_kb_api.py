"""Knowledge-base routes end to end on a live app (aiohttp test server), SQLite and PostgreSQL:
articles and who may write them, search, suggestions for conversations (and "no good answer"),
feedback stored and reported, knowledge capture into drafts, 503 while the model loads.

The model is real and loaded once per test session (hub.kb.index.shared_embedder)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from hub.auth.accounts import create_agent, create_token
from hub.demo.articles import seed_knowledge_base
from hub.kb import articles as kb
from hub.store.db import make_engine
from hub.web.app import create_app
from hub.web.keys import KB_INDEX


@dataclass
class Hub:
    client: TestClient
    app: object
    engine: object
    admin: dict
    agent: dict
    integration: dict

    @property
    def index(self):
        return self.app[KB_INDEX]

    async def message(self, external_id: str, text: str, **extra) -> dict:
        body = {"channel": "api", "external_id": external_id, "sender": {"address": f"{external_id}@example.com"}, "text": text, **extra}
        resp = await self.client.post("/api/v1/messages", json=body, headers=self.integration)
        assert resp.status == 201, await resp.text()
        return await resp.json()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


async def wait_ready(index, timeout: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not index.ready:
        assert loop.time() < deadline, "the knowledge base did not load"
        await asyncio.sleep(0.05)


async def start(settings, *, before_start=None) -> Hub:
    settings = settings.model_copy(update={"kb": settings.kb.model_copy(update={"warm_up": True})})
    app = create_app(settings)
    if before_start is not None:
        before_start(app)
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "admin@example.com", "admin password", role="admin")
    create_agent(engine, "agent@example.com", "agent password", role="agent")
    integration = create_token(engine, "shop", role="integration")
    client = TestClient(TestServer(app))
    await client.start_server()
    tokens = []
    for email, password in [("admin@example.com", "admin password"), ("agent@example.com", "agent password")]:
        resp = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        tokens.append((await resp.json())["token"])
    client.session.cookie_jar.clear()
    return Hub(client, app, engine, bearer(tokens[0]), bearer(tokens[1]), bearer(integration))


@pytest.fixture
async def hub(settings):
    hub = await start(settings)
    await wait_ready(hub.index)
    yield hub
    await hub.client.close()
    hub.engine.dispose()


_demo_vectors: dict[str, bytes] = {}


@pytest.fixture
async def demo_hub(hub):
    """The hub with the demo knowledge base, indexed. Its vectors are computed once per session
    and handed to later tests through the store, as another hub process would find them."""
    seed_knowledge_base(hub.engine)
    if _demo_vectors:
        kb.store_vectors(hub.engine, _demo_vectors, hub.index.model)
    await asyncio.to_thread(hub.index.sync)
    if not _demo_vectors:
        with hub.engine.connect() as conn:
            _demo_vectors.update(conn.execute(select(kb.chunk_t.c.passage_id, kb.chunk_t.c.vector)).all())
    return hub


async def error_of(resp, status):
    assert resp.status == status, await resp.text()
    return (await resp.json())["error"]


LONG_BODY = """Intro paragraph about parcels.

## Europe
""" + "Parcels to Europe take four to eight working days with tracked delivery. " * 12 + """

## Rest of the world
""" + "Parcels to the rest of the world take six to twelve working days with DHL Express. " * 12


async def test_articles_crud_paging_and_who_may_write(hub):
    c = hub.client
    resp = await c.post("/api/v1/kb/articles", json={"title": "Shipping", "body": LONG_BODY, "tags": ["shipping"]}, headers=hub.admin)
    assert resp.status == 201, await resp.text()
    article = await resp.json()
    assert article["published"] is True and article["created_by"].startswith("agent:")
    assert [p["heading"] for p in article["passages"]][-2:] == ["Europe", "Rest of the world"]

    # Agents write drafts only: by default, and never publish, edit published articles or delete.
    draft = await (await c.post("/api/v1/kb/articles", json={"title": "Draft", "body": "Text"}, headers=hub.agent)).json()
    assert draft["published"] is False
    await error_of(await c.post("/api/v1/kb/articles", json={"title": "X", "body": "Y", "published": True}, headers=hub.agent), 403)
    await error_of(await c.patch(f"/api/v1/kb/articles/{draft['id']}", json={"published": True}, headers=hub.agent), 403)
    await error_of(await c.patch(f"/api/v1/kb/articles/{article['id']}", json={"title": "Mine"}, headers=hub.agent), 403)
    await error_of(await c.delete(f"/api/v1/kb/articles/{draft['id']}", headers=hub.agent), 403)
    edited = await (await c.patch(f"/api/v1/kb/articles/{draft['id']}", json={"body": "Better text"}, headers=hub.agent)).json()
    assert edited["body"] == "Better text" and edited["published"] is False
    await error_of(await c.post("/api/v1/kb/articles", json={"title": "X", "body": "Y"}, headers=hub.integration), 403)
    err = await error_of(await c.post("/api/v1/kb/articles", json={"title": " ", "body": "Y"}, headers=hub.admin), 422)
    assert "title" in err["message"]
    await error_of(await c.patch(f"/api/v1/kb/articles/{draft['id']}", json={"title": None}, headers=hub.admin), 422)

    for i in range(3):
        await c.post("/api/v1/kb/articles", json={"title": f"Note {i}", "body": "x"}, headers=hub.admin)
    first = await (await c.get("/api/v1/kb/articles?limit=2", headers=hub.agent)).json()
    second = await (await c.get(f"/api/v1/kb/articles?limit=2&cursor={first['next_cursor']}", headers=hub.agent)).json()
    third = await (await c.get(f"/api/v1/kb/articles?limit=2&cursor={second['next_cursor']}", headers=hub.agent)).json()
    seen = [a["id"] for page in (first, second, third) for a in page["items"]]
    assert seen == sorted(seen, reverse=True) and len(seen) == 5 and third["next_cursor"] is None
    drafts = await (await c.get("/api/v1/kb/articles?published=false", headers=hub.agent)).json()
    assert [a["id"] for a in drafts["items"]] == [draft["id"]]
    await error_of(await c.get("/api/v1/kb/articles?published=maybe", headers=hub.agent), 422)

    assert (await c.delete(f"/api/v1/kb/articles/{article['id']}", headers=hub.admin)).status == 204
    await error_of(await c.get(f"/api/v1/kb/articles/{article['id']}", headers=hub.agent), 404)
    assert not {pid for pid in hub.index._index.ids() if pid.startswith(f"{article['id']}-")}


async def test_suggestions_search_and_no_good_answer(demo_hub):
    hub, c = demo_hub, demo_hub.client
    charged = await hub.message("call-1", "Customer: I was charged twice for my last order.\nAgent: I am sorry, let me check that.",
                                subject="Call: double charge")
    shipping = await hub.message("form-1", "The product page says 'ships in 2 days' but checkout says 2 weeks. Which is right?",
                                 subject="Delivery time question")
    offtopic = await hub.message("other-1", "What is the capital of France?")

    body = await (await c.get(f"/api/v1/conversations/{charged['conversation_id']}/suggestions", headers=hub.agent)).json()
    assert body["status"] == "suggested" and body["answerable"] is True
    assert body["suggestions"][0]["title"] == "I was charged twice for my order"
    assert "let me check" not in body["question"]  # the agent's turn of the call is not the question
    assert set(body["suggestions"][0]) == {"article_id", "passage_id", "title", "heading", "snippet", "score", "confidence"}

    body = await (await c.get(f"/api/v1/conversations/{shipping['conversation_id']}/suggestions?k=2", headers=hub.agent)).json()
    assert body["suggestions"][0]["title"].startswith('"Ships in 2 days"')

    body = await (await c.get(f"/api/v1/conversations/{offtopic['conversation_id']}/suggestions", headers=hub.agent)).json()
    assert body == {**body, "status": "no_good_answer", "answerable": False, "suggestions": []}

    found = await (await c.get("/api/v1/kb/search?q=how+long+is+delivery+to+Lagos&k=2", headers=hub.agent)).json()
    assert found["answerable"] and found["hits"][0]["title"].startswith("International shipping")
    await error_of(await c.get("/api/v1/kb/search?q=", headers=hub.agent), 422)
    await error_of(await c.get("/api/v1/kb/search?q=x&method=magic", headers=hub.agent), 422)
    await error_of(await c.get("/api/v1/conversations/424242/suggestions", headers=hub.agent), 404)
    await error_of(await c.get("/api/v1/kb/search?q=refund", headers=hub.integration), 403)


async def test_feedback_is_stored_and_reported(demo_hub):
    hub, c = demo_hub, demo_hub.client
    conv = await hub.message("call-2", "I was charged twice for my order, can you refund one payment?")
    url = f"/api/v1/conversations/{conv['conversation_id']}/suggestions"
    shown = (await (await c.get(url, headers=hub.agent)).json())["suggestions"]
    top = shown[0]
    await c.get(url, headers=hub.agent)  # shown again on the same conversation: counted once

    resp = await c.post(url + "/feedback", json={"article_id": top["article_id"], "passage_id": top["passage_id"], "verdict": "used"},
                        headers=hub.agent)
    assert resp.status == 201 and (await resp.json())["created"] is True
    again = await c.post(url + "/feedback", json={"article_id": top["article_id"], "verdict": "used"}, headers=hub.agent)
    assert again.status == 200
    articles = (await (await c.get("/api/v1/kb/articles", headers=hub.agent)).json())["items"]
    other = next(a["id"] for a in articles if a["id"] != top["article_id"])
    await c.post(url + "/feedback", json={"article_id": other, "verdict": "not_helpful"}, headers=hub.agent)
    await error_of(await c.post(url + "/feedback", json={"article_id": top["article_id"], "verdict": "meh"}, headers=hub.agent), 422)
    await error_of(await c.post(url + "/feedback", json={"article_id": 99999, "verdict": "used"}, headers=hub.agent), 404)
    await error_of(await c.post(url + "/feedback", json={"article_id": top["article_id"], "passage_id": "1-abc", "verdict": "used"},
                                headers=hub.agent), 422)

    report = {r["article_id"]: r for r in (await (await c.get("/api/v1/kb/feedback", headers=hub.admin)).json())["items"]}
    assert report[top["article_id"]]["shown"] == 1
    assert report[top["article_id"]]["used"] == 1 and report[top["article_id"]]["used_rate"] == 1.0
    assert report[other]["not_helpful"] == 1


async def test_capture_turns_a_resolved_reply_into_a_draft_that_is_not_suggested(demo_hub):
    hub, c = demo_hub, demo_hub.client
    conv = await hub.message("q-1", "Can I pay with a bank transfer from abroad?", subject="Bank transfer")
    cid = conv["conversation_id"]
    reply = await (await c.post(f"/api/v1/conversations/{cid}/replies", headers=hub.agent,
                                json={"text": "Yes: use IBAN GB00 DEMO 0000 and your order number as reference. It takes 1-3 days."})).json()
    capture = f"/api/v1/conversations/{cid}/messages/{reply['id']}/capture"

    await error_of(await c.post(capture, headers=hub.agent), 409)  # not resolved yet
    await c.patch(f"/api/v1/conversations/{cid}", json={"status": "resolved"}, headers=hub.agent)
    await error_of(await c.post(f"/api/v1/conversations/{cid}/messages/{conv['message_id']}/capture", headers=hub.agent), 422)
    resp = await c.post(capture, headers=hub.agent)
    assert resp.status == 201, await resp.text()
    draft = await resp.json()
    assert draft["published"] is False and draft["title"] == "Bank transfer"
    assert "bank transfer from abroad" in draft["body"] and "IBAN" in draft["body"]
    assert draft["captured_from_message_id"] == reply["id"]
    same = await c.post(capture, json={"title": "Another title"}, headers=hub.agent)
    assert same.status == 200 and (await same.json())["id"] == draft["id"]

    def found():
        return [h["article_id"] for h in search["hits"]]

    search = await (await c.get("/api/v1/kb/search?q=pay+by+bank+transfer+IBAN", headers=hub.agent)).json()
    assert draft["id"] not in found()  # a draft is never suggested
    await c.patch(f"/api/v1/kb/articles/{draft['id']}", json={"published": True}, headers=hub.admin)
    search = await (await c.get("/api/v1/kb/search?q=pay+by+bank+transfer+IBAN", headers=hub.agent)).json()
    assert found()[0] == draft["id"]


async def test_a_captured_answer_published_by_an_admin_is_found_at_once(demo_hub):
    hub, c = demo_hub, demo_hub.client
    conv = await hub.message("q-2", "Do you deliver to the Faroe Islands?", subject="Faroe Islands")
    cid = conv["conversation_id"]
    reply = await (await c.post(f"/api/v1/conversations/{cid}/replies", headers=hub.agent,
                                json={"text": "Yes, we ship to the Faroe Islands by Posta in 6-10 working days, from £19.95."})).json()
    await c.patch(f"/api/v1/conversations/{cid}", json={"status": "resolved"}, headers=hub.agent)
    capture = f"/api/v1/conversations/{cid}/messages/{reply['id']}/capture"
    await error_of(await c.post(capture, json={"published": True}, headers=hub.agent), 403)  # agents write drafts
    resp = await c.post(capture, json={"published": True, "title": "Delivery to the Faroe Islands"}, headers=hub.admin)
    assert resp.status == 201, await resp.text()
    article = await resp.json()
    assert article["published"] is True
    # No wait for the index's sync interval: the capture indexed it before answering.
    found = await (await c.get("/api/v1/kb/search?q=shipping+to+the+Faroe+Islands", headers=hub.agent)).json()
    assert found["hits"][0]["article_id"] == article["id"] and found["answerable"]


def _ids(body) -> list[int]:
    return [s["article_id"] for s in body["suggestions"]]


async def test_suggestions_learn_from_what_agents_choose(demo_hub):
    """A question like one where an agent used an article ranks that article first; "not helpful"
    pushes an article down for such questions; a restarted index remembers both from the store."""
    hub, c = demo_hub, demo_hub.client
    titles = {a["title"]: a["id"] for a in (await (await c.get("/api/v1/kb/articles?limit=100", headers=hub.agent)).json())["items"]}
    tracking, confirmation = titles["How do I track my order?"], titles["I did not get an order confirmation email"]

    first = await hub.message("learn-1", "Where can I see where my parcel is?")
    url = f"/api/v1/conversations/{first['conversation_id']}/suggestions"
    before = await (await c.get(url + "?k=5", headers=hub.agent)).json()
    assert _ids(before)[0] != tracking  # three articles within a hair; tracking is not first
    resp = await c.post(url + "/feedback", json={"article_id": tracking, "verdict": "used"}, headers=hub.agent)
    assert resp.status == 201
    with hub.engine.connect() as conn:
        stored = conn.execute(select(kb.feedback_t.c.question, kb.feedback_t.c.question_vector)
                              .where(kb.feedback_t.c.article_id == tracking, kb.feedback_t.c.verdict == "used")).one()
    assert stored.question == "Where can I see where my parcel is?" and stored.question_vector is not None

    second = await hub.message("learn-2", "where can i see where my package is")
    after = await (await c.get(f"/api/v1/conversations/{second['conversation_id']}/suggestions", headers=hub.agent)).json()
    assert _ids(after)[0] == tracking

    third = await hub.message("learn-3", "My payment did not go through")
    url = f"/api/v1/conversations/{third['conversation_id']}/suggestions"
    shown = await (await c.get(url, headers=hub.agent)).json()
    assert _ids(shown)[0] == confirmation  # the words match, the answer does not
    await c.post(url + "/feedback", json={"article_id": confirmation, "verdict": "not_helpful"}, headers=hub.agent)
    fourth = await hub.message("learn-4", "the payment did not go through")
    pushed = await (await c.get(f"/api/v1/conversations/{fourth['conversation_id']}/suggestions", headers=hub.agent)).json()
    assert _ids(pushed)[0] != confirmation
    assert confirmation not in _ids(pushed) or _ids(pushed).index(confirmation) > 0

    # Another process (or a restart) reads the same verdicts from the store, vectors included.
    from hub.kb.index import KnowledgeIndex

    other = KnowledgeIndex(hub.engine, hub.index.directory.parent / "other-index", hub.index.embedder)
    await asyncio.to_thread(other.open)
    assert other._index.search("where can i see where my package is").hits[0].article_id == str(tracking)
    assert other._index.search("the payment did not go through").hits[0].article_id != str(confirmation)
    # The agent changes their mind: the other verdict replaces the first, at once.
    resp = await c.post(f"/api/v1/conversations/{first['conversation_id']}/suggestions/feedback",
                        json={"article_id": tracking, "verdict": "not_helpful"}, headers=hub.agent)
    assert resp.status == 201
    again = await hub.message("learn-5", "where can i see where my package is?")
    changed = await (await c.get(f"/api/v1/conversations/{again['conversation_id']}/suggestions?k=5", headers=hub.agent)).json()
    assert _ids(changed)[0] != tracking


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_search_answers_503_until_the_index_is_loaded(settings):
    # Hold the index's lock from before the hub starts, so its thread cannot finish opening.
    held, release = threading.Event(), threading.Event()

    def hold(index):
        with index._lock:
            held.set()
            release.wait(60)

    holder = None

    def before_start(app):
        nonlocal holder
        holder = threading.Thread(target=hold, args=(app[KB_INDEX],))
        holder.start()
        held.wait(10)

    hub = await start(settings, before_start=before_start)
    try:
        try:
            resp = await hub.client.get("/api/v1/kb/search?q=refund", headers=hub.agent)
            err = await error_of(resp, 503)
            assert err["code"] == "kb_loading" and int(resp.headers["Retry-After"]) > 0
            conv = await hub.message("early-1", "I was charged twice")
            await error_of(await hub.client.get(f"/api/v1/conversations/{conv['conversation_id']}/suggestions", headers=hub.agent), 503)
            # The store takes writes while the index loads; the index catches up when it opens.
            resp = await hub.client.post("/api/v1/kb/articles", json={"title": "Charged twice", "body": "We refund duplicates."},
                                         headers=hub.admin)
            assert resp.status == 201
            article = await resp.json()
        finally:
            release.set()
            holder.join()
        await wait_ready(hub.index)
        found = await (await hub.client.get("/api/v1/kb/search?q=charged+twice", headers=hub.agent)).json()
        assert found["hits"][0]["article_id"] == article["id"]
    finally:
        await hub.client.close()
        hub.engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_model_that_cannot_load_is_a_clear_503_and_articles_still_work(settings, tmp_path):
    settings.kb.model_path = tmp_path / "no-such-model"
    hub = await start(settings)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while hub.index._error is None:
            assert loop.time() < deadline
            await asyncio.sleep(0.05)
        resp = await hub.client.get("/api/v1/kb/search?q=refund", headers=hub.agent)
        err = await error_of(resp, 503)
        assert err["code"] == "kb_unavailable" and "no-such-model" in err["message"] and "Retry-After" not in resp.headers
        resp = await hub.client.post("/api/v1/kb/articles", json={"title": "Refunds", "body": "Three days."}, headers=hub.admin)
        assert resp.status == 201
    finally:
        await hub.client.close()
        hub.engine.dispose()
