"""The customer directory in a real browser (Debian's headless Chromium through Playwright), at
desktop (1280x800) and phone (390x844) size: from the header's Customers link, an agent finds a
customer by a piece of their name or address and opens their page; on a phone each customer reads
as a card, with nothing wider than the screen."""

from __future__ import annotations

import pytest

from hub.config.settings import ScmSettings
from hub.contract.messages import Sender
from hub.store.db import make_engine
from tests.support.hub import add_agent, fresh_sqlite, make_settings, seed_conversation, serve_app

SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def hub(tmp_path, sqlite_template):
    """An agent; Chloé Martin by phone, Ana Silva by email, and 60 more customers (two pages)."""
    settings = make_settings(tmp_path, fresh_sqlite(tmp_path, sqlite_template), scm=ScmSettings(enabled=False, demand_push=False))
    engine = make_engine(settings.effective_database_url)
    add_agent(engine, "Bo Diddley")
    chloe = seed_conversation(engine, 0, channel="voice", external_id="call-1", sender=Sender("+44 20 7946 0958", "Chloé Martin"),
                              text="Customer: where is my order?", subject="Call")
    seed_conversation(engine, 1, sender=Sender("ana@example.com", "Ana Silva"), text="Hello", subject="Hi")
    for i in range(60):
        seed_conversation(engine, 100 + i, sender=Sender(f"person{i}@example.net", f"Person {i}"))
    async with serve_app(settings, engine) as server:
        server.chloe = chloe
        yield server


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_an_agent_finds_a_customer_and_opens_their_page(hub, browser, size):
    context = await browser.new_context(viewport=SIZES[size])
    page = await context.new_page()
    page.set_default_timeout(15_000)
    await page.goto(f"{hub.base}/inbox/login")
    await page.get_by_label("Email").fill("bo@example.com")
    await page.get_by_label("Password").fill("bo password")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(lambda url: "/inbox/login" not in url)

    await page.get_by_role("link", name="Customers").click()
    await page.wait_for_url(lambda url: url.endswith("/inbox/customers"))
    rows = page.locator("tr.customer-row")
    assert await rows.count() == 50 and await rows.first.inner_text() != ""
    await page.get_by_role("link", name="Next page").click()
    await page.wait_for_url(lambda url: "cursor=" in url)
    assert await rows.count() == 12
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= SIZES[size]["width"], "nothing wider than the screen"

    await page.get_by_role("searchbox").fill("7946 0958")  # the phone as the caller said it
    await page.get_by_role("button", name="Search").click()
    await page.wait_for_url(lambda url: "q=" in url)
    assert await rows.count() == 1
    assert "+442079460958" in await rows.first.inner_text()
    await page.get_by_role("link", name="Chloé Martin").click()
    await page.wait_for_url(lambda url: url.endswith(f"/inbox/customers/{hub.chloe.customer_id}"))
    assert "Chloé Martin" in await page.locator("h1, h2").first.inner_text()

    await page.goto(f"{hub.base}/inbox/customers?q=nobody-has-this")
    assert "No customer's name or address holds this text." in await page.inner_text("main")
    await context.close()
