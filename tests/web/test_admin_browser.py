"""The knowledge-base editor, the resolve control, the reports and the error page in a real
browser (headless Chromium, Debian's /usr/bin/chromium), at desktop and phone sizes, under the
hub's strict CSP: the preview follows the typing without a reload and shows script as text, an
admin publishes, the resolve button says whom the survey goes to and can skip it, the reports read
in human units, and an unknown address is a page with a way back."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.contract.messages import Sender
from hub.conversations.replies import reply
from hub.kb import articles as kb
from hub.store.db import make_engine, read_tx
from hub.store.models import Conversation, CsatSurvey
from tests.support.browser import DESKTOP, PHONE, chromium, csp_errors, new_page, sign_in
from tests.support.hub import add_agent, fresh_sqlite, make_settings, seed_conversation, serve_app

pytestmark = pytest.mark.timeout(180)
SIZES = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]


@pytest.fixture
async def hub(tmp_path, sqlite_template):
    settings = make_settings(tmp_path, fresh_sqlite(tmp_path, sqlite_template))
    engine = make_engine(settings.effective_database_url)
    ada = add_agent(engine, "Ada Lovelace", role="admin")
    add_agent(engine, "Bo Diddley")
    answered = seed_conversation(engine, 1, external_id="<a1@example.com>", subject="Parcel",
                                 sender=Sender("chloe@example.com", "Chloé Martin"), text="Where is my parcel?")
    reply(engine, answered.conversation_id, ada, "It left today.")
    quiet = seed_conversation(engine, 2, external_id="<q1@example.com>", subject="Lid",
                              sender=Sender("dan@example.com", "Dan"), text="My kettle lid broke.")
    async with serve_app(settings, engine) as server:
        server.answered, server.quiet = answered.conversation_id, quiet.conversation_id
        yield server


def _surveyed(engine) -> set[int]:
    with read_tx(engine) as conn:
        return set(conn.execute(select(CsatSurvey.__table__.c.conversation_id)).scalars())


@pytest.mark.parametrize("size", SIZES)
async def test_admin_writes_an_article_with_a_live_preview_and_publishes_it(hub, size):
    async with chromium() as browser:
        page = await new_page(browser, size)
        await sign_in(page, hub.base, "ada@example.com", "ada password")
        await page.goto(f"{hub.base}/inbox/admin/kb")
        await page.get_by_role("link", name="New article").click()
        await page.get_by_label("Title").fill("Returning a kettle")
        body = page.get_by_label("Text (Markdown)")
        await body.fill("## Steps\n\n1. Pack it\n2. **Post it**\n\n<script>window.pwned=1</script>")
        preview = page.locator("#kb-preview")
        await preview.locator("h2", has_text="Steps").wait_for()
        await preview.locator("strong", has_text="Post it").wait_for()
        assert "<script>" in await preview.inner_text()  # shown as text
        assert await page.evaluate("window.pwned") is None
        await page.screenshot(path=f"/tmp/servicehub-kb-editor-{size['width']}.png")
        await page.get_by_role("button", name="Save draft").click()
        await page.get_by_role("status").filter(has_text="Saved as a draft").wait_for()
        [article] = kb.list_articles(hub.engine)["items"]
        assert not article["published"]
        await page.get_by_role("button", name="Publish").click()
        await page.get_by_role("status").filter(has_text="Published").wait_for()
        assert kb.get_article(hub.engine, article["id"])["published"]
        # The list's title opens the editor.
        await page.goto(f"{hub.base}/inbox/admin/kb")
        await page.get_by_role("link", name="Returning a kettle").click()
        await page.get_by_label("Title").wait_for()
        assert page.url.endswith(f"/inbox/admin/kb/{article['id']}")
        assert not csp_errors(page)


@pytest.mark.parametrize("size", SIZES)
async def test_an_agent_proposes_a_draft_and_cannot_publish(hub, size):
    async with chromium() as browser:
        page = await new_page(browser, size)
        await sign_in(page, hub.base, "bo@example.com", "bo password")
        await page.goto(f"{hub.base}/inbox/admin/kb/new")
        assert await page.get_by_role("button", name="Publish").count() == 0
        await page.get_by_label("Title").fill("Customs")
        await page.get_by_label("Text (Markdown)").fill("Duties are paid on delivery.")
        await page.get_by_role("button", name="Save draft").click()
        await page.get_by_role("status").filter(has_text="Saved as a draft").wait_for()
        [article] = kb.list_articles(hub.engine)["items"]
        assert not article["published"]


@pytest.mark.parametrize("size", SIZES)
async def test_the_resolve_control_says_who_gets_the_survey(hub, size):
    async with chromium() as browser:
        page = await new_page(browser, size)
        await sign_in(page, hub.base, "bo@example.com", "bo password")
        await page.goto(f"{hub.base}/inbox/c/{hub.answered}/resolve")
        await page.get_by_role("button", name="Resolve (sends a satisfaction survey to chloe@example.com)").wait_for()
        await page.goto(f"{hub.base}/inbox/c/{hub.quiet}/resolve")
        await page.get_by_text("No agent has replied").wait_for()
        await page.get_by_role("button", name="Resolve (no survey)").click()
        await page.wait_for_url(f"**/inbox/c/{hub.quiet}")
        await page.goto(f"{hub.base}/inbox/c/{hub.answered}/resolve")
        await page.get_by_role("button", name="Resolve without a survey").click()
        await page.wait_for_url(f"**/inbox/c/{hub.answered}")
        assert _surveyed(hub.engine) == set()
        assert not csp_errors(page)


@pytest.mark.parametrize("size", SIZES)
async def test_in_the_workspace_resolving_says_what_happens_to_the_survey_and_opens_the_next(hub, size):
    """The control sits in the open conversation: the agent sees whom the survey goes to, can skip
    it, and the next conversation of the view opens without a page load."""
    async with chromium() as browser:
        page = await new_page(browser, size)
        await sign_in(page, hub.base, "bo@example.com", "bo password")
        await page.goto(f"{hub.base}/inbox/c/{hub.quiet}?view=all")  # the newest: the other comes next
        await page.evaluate("window.__marker = 'no reload'")
        await page.get_by_text("No agent has replied").wait_for()
        await page.get_by_role("button", name="Resolve and send a satisfaction survey to dan@example.com").click()
        await page.wait_for_url(f"**/inbox/c/{hub.answered}**")
        await page.get_by_role("button", name="Resolve (sends a satisfaction survey to chloe@example.com)").wait_for()
        await page.get_by_role("button", name="Resolve without a survey").click()
        await page.get_by_text("No more conversations in this view.").wait_for()
        assert await page.evaluate("window.__marker") == "no reload"
        with read_tx(hub.engine) as conn:
            statuses = dict(conn.execute(select(Conversation.__table__.c.id, Conversation.__table__.c.status)).all())
        assert statuses[hub.answered] == statuses[hub.quiet] == "resolved"
        assert _surveyed(hub.engine) == {hub.quiet}  # skipped where offered, sent where asked for
        assert not csp_errors(page)


@pytest.mark.parametrize("size", SIZES)
async def test_reports_read_in_human_units_and_unknown_pages_have_a_way_back(hub, size):
    async with chromium() as browser:
        page = await new_page(browser, size)
        await sign_in(page, hub.base, "ada@example.com", "ada password")
        await page.goto(f"{hub.base}/inbox/reports")
        section = page.locator("#report-response_times")
        await section.locator("summary").click()
        await section.get_by_role("columnheader", name="First response, median").wait_for()
        assert "first_response_p50_s" not in await section.inner_text()
        resp = await page.goto(f"{hub.base}/inbox/no/such/page")
        assert resp.status == 404
        await page.get_by_role("heading", name="Not found").wait_for()
        await page.get_by_role("link", name="Go to the inbox").click()
        await page.wait_for_url(f"{hub.base}/inbox")
        assert not csp_errors(page)
