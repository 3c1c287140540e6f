"""An agent who reads Chinese, in a real browser (headless Chromium through Playwright) at desktop
(1280x800) and phone (390x844) size: the list names the channels in Chinese, and a refusal the
customer panel's script shows without a reload (an address another customer has) is in Chinese."""

from __future__ import annotations

import pytest

from hub.config.settings import ScmSettings
from hub.contract.messages import InboundMessage, Sender
from hub.ingest.pipeline import ingest
from hub.store.db import make_engine
from tests.support.hub import add_agent, fresh_sqlite, make_settings, serve_app

SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def hub(tmp_path, sqlite_template):
    settings = make_settings(tmp_path, fresh_sqlite(tmp_path, sqlite_template), scm=ScmSettings(enabled=False, demand_push=False))
    engine = make_engine(settings.effective_database_url)
    add_agent(engine, "王芳", email="wang@example.com", password="wang password")
    ingest(engine, InboundMessage("voice", "call-1", Sender("+44 20 7946 0958", "Chloé Martin"), "Customer: charged twice"))
    form = ingest(engine, InboundMessage("webform", "form-1", Sender("dmitri@example.org", "Dmitri Volkov"), "Which is right?",
                                         subject="Delivery"))
    ana = ingest(engine, InboundMessage("email", "<a1@example.com>", Sender("ana@example.com", "Ana Silva"), "Hello", subject="Hi"))
    async with serve_app(settings, engine) as server:
        server.ana, server.dmitri = ana, form.customer_id
        yield server


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_a_chinese_reading_agent_sees_channels_and_a_refusal_in_chinese(hub, browser, size):
    context = await browser.new_context(viewport=SIZES[size], locale="zh-CN")
    page = await context.new_page()
    page.set_default_timeout(15_000)
    await page.goto(f"{hub.base}/inbox/login")
    await page.locator("input[name=email]").fill("wang@example.com")
    await page.locator("input[name=password]").fill("wang password")
    await page.locator("form button[type=submit]").click()
    await page.wait_for_url(lambda url: "/inbox/login" not in url)
    await page.goto(f"{hub.base}/inbox?view=all")
    channels = await page.locator(".chan").all_inner_texts()
    assert "电话" in channels and "网页表单" in channels and "voice" not in channels and "webform" not in channels, channels
    # Dmitri's customer page: Ana's address refused in place, in Chinese (the script shows the server's words).
    await page.goto(f"{hub.base}/inbox/customers/{hub.dmitri}")
    await page.evaluate("window.__sameDocument = 'yes'")
    panel = page.locator("[data-customer-panel]")
    await panel.locator("input[name=address]").fill("ANA@example.com")
    await panel.locator("input[name=address]").press("Enter")
    status = page.locator("[data-customer-panel] .panel-status")
    await status.filter(has_text="属于另一位客户").wait_for()
    assert "belongs to another customer" not in await status.inner_text()
    assert await page.evaluate("window.__sameDocument === 'yes'")
    await context.close()
