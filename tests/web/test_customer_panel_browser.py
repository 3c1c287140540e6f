"""The customer panel, @mentions and notifications in a real browser (Debian's headless Chromium
through Playwright), at desktop (1280x800) and phone (390x844) size, under the hub's strict CSP.

What only a browser shows: an agent edits the customer (address, tag, attribute, note) without the
page reloading, the orders read as a table, an address of another customer offers the merge
review, the duplicate suggestion leads to it; "@Bo" in the note composer offers Bo Diddley and
puts his full name in; Bo's bell counts the mention live, without a reload, and opening it takes
him to the conversation with the notification read.
"""

from __future__ import annotations

import re
import shutil

import pytest
from aiohttp.test_utils import TestServer

from hub.auth.accounts import create_agent
from hub.config.settings import KnowledgeSettings, ScmSettings, Settings, SlaSettings
from hub.contract.messages import InboundMessage, Sender
from hub.ingest.pipeline import ingest
from hub.store.db import make_engine, write_tx
from hub.store.models import ScmFact, utcnow
from hub.web.app import create_app
from tests.support.serverproc import free_port

SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def hub(tmp_path, sqlite_template):
    """Two agents; Chloé Martin twice (a call, and an email about the same order), Ana by email."""
    db = tmp_path / "servicehub.db"
    shutil.copy(sqlite_template, db)
    port = free_port()
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{db}", public_url=f"http://127.0.0.1:{port}",
                        outbox_poll_seconds=0.05, login_rate_per_minute=1000, kb=KnowledgeSettings(warm_up=False),
                        sla=SlaSettings(assignment="off"), scm=ScmSettings(enabled=False, demand_push=False))
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "ada@example.com", "ada password", role="admin", name="Ada Lovelace")
    create_agent(engine, "bo@example.com", "bo password", role="agent", name="Bo Diddley")
    call = ingest(engine, InboundMessage("voice", "call-1", Sender("+44 20 7946 0958", "Chloé Martin"),
                                         "Customer: where is my order SO-4711?", subject="Call: order SO-4711"))
    mail = ingest(engine, InboundMessage("email", "<c1@example.com>", Sender("chloe.martin@example.com", "Chloe Martin"),
                                         "Where is my order SO-4711?", subject="Order SO-4711"))
    ana = ingest(engine, InboundMessage("email", "<a1@example.com>", Sender("ana@example.com", "Ana Silva"), "Hello", subject="Hi"))
    with write_tx(engine) as conn:
        for r in (call, mail):
            conn.execute(ScmFact.__table__.insert().values(
                conversation_id=r.conversation_id, message_id=r.message_id, kind="order", subject="SO-4711",
                payload={"ref": "SO-4711", "state": "shipped", "expected_date": "2026-12-08", "owner_email": "chloe.martin@example.com"},
                created_at=utcnow()))
    server = TestServer(create_app(settings), host="127.0.0.1", port=port)
    await server.start_server()
    server.base = f"http://127.0.0.1:{port}"
    server.call, server.mail, server.ana = call, mail, ana
    yield server
    await server.close()
    engine.dispose()


async def signed_in(browser, base, email, password, viewport):
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    # What a script or the CSP refused (a resource the page could not load, a favicon, is not ours to judge here).
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and "Failed to load resource" not in msg.text else None)
    page.console_errors = errors
    await page.goto(f"{base}/inbox/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(lambda url: "/inbox/login" not in url)
    return page


async def no_reload_marker(page):
    await page.evaluate("window.__sameDocument = 'yes'")


async def still_same_document(page) -> bool:
    return await page.evaluate("window.__sameDocument === 'yes'")


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_an_agent_edits_the_customer_in_place(hub, browser, size):
    page = await signed_in(browser, hub.base, "ada@example.com", "ada password", SIZES[size])
    await page.goto(f"{hub.base}/inbox/c/{hub.call.conversation_id}")
    panel = page.locator("[data-customer-panel]")
    await panel.scroll_into_view_if_needed()
    await no_reload_marker(page)
    # A caller had no address to answer by email: the agent adds one, unverified.
    await panel.get_by_label("Address or phone number").fill("chloe.m@example.org")
    await panel.get_by_role("button", name="Add address").click()
    ident = page.locator("[data-customer-panel] .identities li", has_text="chloe.m@example.org")
    await ident.wait_for()
    assert "unverified" in await ident.inner_text()
    await page.locator("[data-customer-panel]").get_by_label("Attribute").fill("plan")
    await page.locator("[data-customer-panel]").get_by_label("Value").fill("gold")
    await page.locator("[data-customer-panel]").get_by_role("button", name="Set attribute").click()
    await page.locator("[data-customer-panel] .attributes dd", has_text="gold").wait_for()
    await page.locator("[data-customer-panel]").get_by_label("Note about the customer").fill("Prefers calls after 5pm")
    await page.locator("[data-customer-panel]").get_by_role("button", name="Add customer note").click()
    await page.locator("[data-customer-panel] .customer-notes", has_text="Prefers calls after 5pm").wait_for()
    assert "Ada Lovelace" in await page.locator("[data-customer-panel] .customer-notes").inner_text()
    await page.locator("[data-customer-panel] summary", has_text="Edit name and tags").click()
    await page.locator("[data-customer-panel]").get_by_label("Tag the customer").fill("Wholesale")
    await page.locator("[data-customer-panel]").get_by_role("button", name="Add tag").click()
    await page.locator("[data-customer-panel] .customer-tag", has_text="wholesale").wait_for()
    # The orders asked about, as a table: one cell per value, not a run-together line.
    for table in await page.locator("[data-customer-panel] table.orders").all():
        cells = await table.locator("tbody tr", has_text="SO-4711").first.locator("th, td").all_inner_texts()
        assert len(cells) == 4 and cells[0] == "SO-4711" and cells[1] and re.fullmatch(r"\d{4}-\d{2}-\d{2}", cells[2]), cells
    # Ana's address on Chloé: refused, with the merge review one click away.
    await page.locator("[data-customer-panel]").get_by_label("Address or phone number").fill("ANA@example.com")
    await page.locator("[data-customer-panel]").get_by_role("button", name="Add address").click()
    status = page.locator("[data-customer-panel] .panel-status")
    await status.get_by_role("link", name=f"Review merging customer #{hub.ana.customer_id}").wait_for()
    assert "belongs to another customer" in await status.inner_text()
    assert await still_same_document(page)
    # The other Chloé Martin (same order) is suggested; its review opens without typing an id.
    suggestion = page.locator("[data-customer-panel] .duplicates li", has_text=f"#{hub.mail.customer_id}")
    assert "same name" in await suggestion.inner_text()
    await page.screenshot(path=f"/tmp/servicehub-customer-panel-{size}.png", full_page=True)
    await suggestion.get_by_role("link", name="Review merge").click()
    await page.wait_for_url(f"**/inbox/customers/{hub.call.customer_id}/merge?other={hub.mail.customer_id}")
    assert page.console_errors == []


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_a_mention_by_name_reaches_the_colleague_live(hub, browser, size):
    bo = await signed_in(browser, hub.base, "bo@example.com", "bo password", SIZES[size])
    await bo.goto(f"{hub.base}/inbox")
    await no_reload_marker(bo)
    bell = bo.locator("[data-notifications]")
    await bell.wait_for()
    assert await bo.locator(".bell-count").is_hidden()
    ada = await signed_in(browser, hub.base, "ada@example.com", "ada password", SIZES[size])
    await ada.goto(f"{hub.base}/inbox/c/{hub.ana.conversation_id}")
    note = ada.locator("#note-text")
    await note.scroll_into_view_if_needed()
    await note.click()
    await note.press_sequentially("Please call her back @bo")
    option = ada.get_by_role("listbox").get_by_role("option", name="Bo Diddley")
    await option.wait_for()
    await note.press("Enter")
    assert await note.input_value() == "Please call her back @Bo Diddley "
    await note.press_sequentially("and @Nobody")
    await ada.get_by_role("button", name="Add note").click()
    timeline = ada.locator("#timeline")
    await timeline.locator("mark.mention", has_text="@Bo Diddley").wait_for()
    assert "(not delivered)" in await timeline.locator("mark.mention-missed").locator("xpath=..").inner_text()
    # Bo's page counts it live, without a reload.
    await bo.locator(".bell-count", has_text="1").wait_for()
    assert await still_same_document(bo)
    await bell.click()
    item = bo.locator(".bell-menu li.unread", has_text="Ada Lovelace mentioned you")
    await item.wait_for()
    await bo.screenshot(path=f"/tmp/servicehub-bell-{size}.png")
    await item.get_by_role("link").click()
    await bo.wait_for_url(f"**/inbox/c/{hub.ana.conversation_id}")
    await bo.locator(".bell-menu").wait_for(state="attached")
    assert await bo.locator(".bell-count").is_hidden()
    assert bo.console_errors == [] and ada.console_errors == []
