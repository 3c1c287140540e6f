"""The knowledge-base editor of the inbox through a real aiohttp server, on SQLite and PostgreSQL:
an admin writes a draft, previews it, publishes it (the index has it at once) and sees how often it
was used and found not helpful; an agent proposes drafts but cannot publish; script in Markdown is
shown as text; a huge article and a guessed id get clear answers, and nothing typed is lost."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert

from hub.auth.accounts import create_agent
from hub.contract.messages import InboundMessage, Sender
from hub.ingest.pipeline import ingest
from hub.kb import articles as kb
from hub.kb import editor
from hub.store.db import make_engine, write_tx
from hub.store.models import KbFeedback
from hub.web.app import create_app
from hub.web.keys import KB_INDEX
from tests.support.inbox import csrf_of, sign_in

pytestmark = pytest.mark.timeout(120)

HOSTILE = ('# Returns\n\n<script>window.pwned=1</script>\n\n[click](javascript:alert(1)) '
           '<img src=x onerror="alert(1)"> **bold**\n\n| a | b |\n|---|---|\n| 1 | 2 |\n')


def test_markdown_preview_is_sanitised_and_linear():
    html = editor.render_markdown(HOSTILE)
    assert "<h1>Returns</h1>" in html and "<strong>bold</strong>" in html and "<table>" in html
    assert "<script" not in html and not re.search(r"<[a-z][^>]*\son\w+=", html) and 'href="javascript' not in html
    assert "&lt;script&gt;" in html  # shown as text, not dropped silently
    # Pathological input (deep nesting, long runs of markup) still renders, in one pass.
    for text in ("[" * 50_000, "*a " * 50_000, "> " * 20_000 + "x", "`" * 100_000):
        assert isinstance(editor.render_markdown(text), str)


@pytest.fixture
async def hub(settings):
    settings.kb.warm_up = False
    app = create_app(settings)
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "admin@example.com", "admin password", role="admin", name="Ada Admin")
    create_agent(engine, "agent@example.com", "agent password", role="agent", name="Bo Agent")
    client = TestClient(TestServer(app))
    await client.start_server()
    client.engine = engine
    yield client
    await client.close()
    engine.dispose()


async def _form_token(hub, path="/inbox/admin/kb/new") -> str:
    return csrf_of(await (await hub.get(path)).text())


async def test_admin_writes_previews_publishes_and_sees_use(hub):
    await sign_in(hub, "admin@example.com", "admin password")
    token = await _form_token(hub)
    resp = await hub.post("/inbox/admin/kb/new", data={"_csrf": token, "title": "Returns", "body": HOSTILE, "language": "en",
                                                      "tags": "returns, refunds", "action": "draft"}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    article_id = int(re.search(r"/inbox/admin/kb/(\d+)", resp.headers["Location"]).group(1))
    draft = kb.get_article(hub.engine, article_id)
    assert not draft["published"] and draft["tags"] == ["returns", "refunds"]
    page = await (await hub.get(f"/inbox/admin/kb/{article_id}")).text()
    assert "Draft" in page and "&lt;script&gt;" in page and "<script>window.pwned" not in page
    # The list's title opens the editor, not the API's JSON.
    listing = await (await hub.get("/inbox/admin/kb")).text()
    assert f'href="/inbox/admin/kb/{article_id}"' in listing and "/api/v1/kb/articles/" not in listing

    preview = await hub.post("/inbox/admin/kb/preview", data={"body": "## Hi\n<script>x()</script>"},
                             headers={"X-CSRF-Token": token})
    assert preview.status == 200 and "<h2>Hi</h2>" in await preview.text() and "<script>" not in await preview.text()
    assert (await hub.post("/inbox/admin/kb/preview", data={"body": "x"})).status == 403  # no CSRF token

    resp = await hub.post(f"/inbox/admin/kb/{article_id}", data={"_csrf": token, "title": "Returns", "body": HOSTILE,
                                                                 "language": "en", "tags": "", "action": "publish"},
                          allow_redirects=False)
    assert resp.status == 303 and kb.get_article(hub.engine, article_id)["published"]
    convs = [ingest(hub.engine, InboundMessage(channel="email", external_id=f"<r{n}@example.com>", sender=Sender(f"c{n}@example.com"),
                                               text="How do I return a kettle?")).conversation_id for n in range(3)]
    with write_tx(hub.engine) as conn:
        conn.execute(insert(KbFeedback.__table__), [
            {"conversation_id": c, "article_id": article_id, "verdict": v, "agent_id": None}
            for c, v in ((convs[0], "shown"), (convs[1], "shown"), (convs[2], "shown"), (convs[0], "used"), (convs[1], "not_helpful"))])
    assert editor.usage(hub.engine, [article_id])[article_id] == {"shown": 3, "used": 1, "not_helpful": 1}
    page = await (await hub.get(f"/inbox/admin/kb/{article_id}")).text()
    assert "Suggested in 3 conversations · used 1 · not helpful 1" in page


async def test_agent_proposes_drafts_but_cannot_publish(hub):
    await sign_in(hub, "agent@example.com", "agent password")
    token = await _form_token(hub)
    form = {"_csrf": token, "title": "Customs", "body": "Duties are paid on delivery.", "language": "en", "tags": ""}
    resp = await hub.post("/inbox/admin/kb/new", data={**form, "action": "publish"})
    assert resp.status == 403 and "Duties are paid on delivery." in await resp.text()  # refused, the text kept
    resp = await hub.post("/inbox/admin/kb/new", data={**form, "action": "draft"}, allow_redirects=False)
    assert resp.status == 303
    article_id = int(resp.headers["Location"].split("/")[-1].split("?")[0])
    assert not kb.get_article(hub.engine, article_id)["published"]
    resp = await hub.post(f"/inbox/admin/kb/{article_id}", data={**form, "action": "delete"})
    assert resp.status == 403 and kb.get_article(hub.engine, article_id)


async def test_huge_articles_and_guessed_ids_get_clear_answers(hub):
    await sign_in(hub, "admin@example.com", "admin password")
    token = await _form_token(hub)
    huge = "word " * 40_001  # over 200,000 characters
    resp = await hub.post("/inbox/admin/kb/new", data={"_csrf": token, "title": "Huge", "body": huge, "action": "draft"})
    assert resp.status == 422 and "200000" in (await resp.text()).replace(",", "")
    assert kb.list_articles(hub.engine)["items"] == []
    for path in ("/inbox/admin/kb/987654", "/inbox/admin/kb/2147483648", "/inbox/admin/kb/abc"):
        resp = await hub.get(path)
        assert resp.status in (404, 422) and resp.content_type == "text/html", path
    resp = await hub.post("/inbox/admin/kb/987654", data={"_csrf": token, "title": "x", "body": "y", "action": "draft"})
    assert resp.status == 404
    resp = await hub.post("/inbox/admin/kb/new", data={"_csrf": token, "title": " ", "body": "y", "action": "draft"})
    assert resp.status == 422
    assert hub.app[KB_INDEX] is not None
