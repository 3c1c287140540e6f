"""The web form in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by
Playwright against the hub served by aiohttp's TestServer, all in the test's event loop.

What only a browser shows: the page works with the hub's strict CSP, a person can fill it in by
its labels and send it, a page without its token is refused, the embeddable form works inside
another site's page, and markup a visitor types never runs (neither on the hub's pages nor where
an agent's screen shows the stored message).
"""

from __future__ import annotations

import asyncio
import re
import shutil

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import text

from hub.auth.accounts import create_agent, login
from hub.config.settings import Settings
from hub.conversations.queries import get_conversation
from hub.store.db import make_engine
from hub.web.app import create_app
from tests.support.browser import chromium
from tests.support.serverproc import free_port
from tests.support.webform import PNG

XSS = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def hub(tmp_path, sqlite_template):
    db = tmp_path / "servicehub.db"
    shutil.copy(sqlite_template, db)
    port = free_port()
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{db}",
        public_url=f"http://127.0.0.1:{port}",
        form_min_fill_seconds=0.5,
        form_rate_per_minute=1000,
        outbox_poll_seconds=0.05,
    )
    server = TestServer(create_app(settings), host="127.0.0.1", port=port)
    await server.start_server()
    server.settings = settings
    server.base = f"http://127.0.0.1:{port}"
    yield server
    await server.close()


@pytest.fixture
async def browser():
    async with chromium() as launched:
        yield launched


@pytest.fixture
async def page(browser):
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    # A CSP violation (an inline script or style the page needed) shows up as a console error.
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.console_errors = errors
    yield page
    await context.close()


def count(settings: Settings, sql: str) -> int:
    engine = make_engine(settings.effective_database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar_one()
    finally:
        engine.dispose()


async def fill_contact(page, *, name="Ana Silva", subject="Where is my order?", message="It has not arrived."):
    # By their labels, as a person (or a screen reader) finds them.
    await page.get_by_label("Your name").fill(name)
    await page.get_by_label("Email").fill("ana@example.com")
    await page.get_by_label("Order number").fill("A1001")
    await page.get_by_label("Subject").fill(subject)
    await page.get_by_label("Message").fill(message)


async def test_a_visitor_fills_in_the_form_and_gets_a_reference(hub, page):
    await page.goto(f"{hub.base}/forms/contact")
    assert await page.title() == "Contact us"
    assert await page.evaluate("document.documentElement.lang") == "en"
    # the stylesheet loaded under the CSP: the honeypot is moved off screen
    box = await page.locator("#hp-homepage").bounding_box()
    assert box is None or box["x"] < -1000

    # sending it empty: the errors, tied to their fields, and the summary has the focus
    await asyncio.sleep(0.6)
    await page.get_by_role("button", name="Send").click()
    await page.wait_for_selector("#error-summary")
    assert await page.title() == "Error: Contact us"
    assert await page.evaluate("document.activeElement.id") == "error-summary"
    email = page.get_by_label("Email")
    assert await email.get_attribute("aria-invalid") == "true"
    described = await email.get_attribute("aria-describedby")
    assert "Fill in “Email”" in await page.locator(f"#{described}").inner_text()

    await fill_contact(page)
    await page.get_by_label("Attachment").set_input_files({"name": "photo.png", "mimeType": "image/png", "buffer": PNG})
    await page.get_by_role("button", name="Send").click()
    reference = page.locator(".reference")
    await reference.wait_for()
    match = re.fullmatch(r"#(\d+)", await reference.inner_text())
    assert match, await page.content()
    cid = int(match.group(1))
    assert "ana@example.com" in await page.locator("main").inner_text()

    engine = make_engine(hub.settings.effective_database_url)
    try:
        conv = await asyncio.to_thread(get_conversation, engine, cid)
    finally:
        engine.dispose()
    assert conv["channel"] == "webform"
    assert conv["messages"][0]["sender"]["address"] == "ana@example.com"
    assert "Order number: A1001" in conv["messages"][0]["text"]
    assert conv["messages"][0]["attachments"][0]["content_type"] == "image/png"
    assert conv["messages"][1]["channel"] == "email" and f"[#{cid}]" in conv["messages"][1]["subject"]
    assert not [e for e in page.console_errors if "Content Security Policy" in e], page.console_errors


async def test_a_page_without_its_token_is_refused(hub, page):
    await page.goto(f"{hub.base}/forms/contact")
    await fill_contact(page)
    await page.evaluate("document.querySelector('input[name=_token]').remove()")
    await asyncio.sleep(0.6)
    await page.get_by_role("button", name="Send").click()
    await page.get_by_role("heading", name="This form could not be sent").wait_for()
    assert "security token" in await page.locator("main").inner_text()
    assert count(hub.settings, "SELECT count(*) FROM message") == 0


async def test_markup_typed_into_the_form_never_runs(hub, page):
    await page.goto(f"{hub.base}/forms/contact")
    await fill_contact(page, name=f"Ana {XSS}", subject=f"Hi {XSS}", message=f"Look: {XSS}")
    await asyncio.sleep(0.6)
    await page.get_by_role("button", name="Send").click()
    await page.locator(".reference").wait_for()
    cid = int((await page.locator(".reference").inner_text()).lstrip("#"))

    # the confirmation echoes it as text
    await page.wait_for_timeout(300)
    assert await page.evaluate("typeof window.pwned") == "undefined"
    assert f"Look: {XSS}" in await page.locator(".summary").inner_text()
    assert await page.locator("main img").count() == 0

    # ... and by escaping alone: the same page without the hub's CSP runs nothing either
    html = await page.content()
    await page.goto("about:blank")
    await page.set_content(html)
    await page.wait_for_timeout(300)
    assert await page.evaluate("typeof window.pwned") == "undefined"

    # an agent's screen: the API gives the message as text (html null); shown as an inbox shows
    # it (sanitised html when there is some, else the text as text), nothing runs
    engine = make_engine(hub.settings.effective_database_url)
    create_agent(engine, "agent@example.com", "agent password", role="agent")
    token = login(engine, "agent@example.com", "agent password", days=1).token
    engine.dispose()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{hub.base}/api/v1/conversations/{cid}", headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200
            conv = await resp.json()
    inbound = conv["messages"][0]
    assert inbound["html"] is None and f"Look: {XSS}" in inbound["text"]
    assert inbound["subject"] == f"Hi {XSS}" and conv["customer"]["name"] == f"Ana {XSS}"
    await page.set_content("<h1 id=subject></h1><p id=from></p><div id=body></div>")
    await page.evaluate(
        """([conv, m]) => {
            document.getElementById('subject').textContent = m.subject;
            document.getElementById('from').textContent = conv.customer.name;
            const body = document.getElementById('body');
            if (m.html) body.innerHTML = m.html; else body.textContent = m.text;
        }""",
        [conv, inbound],
    )
    await page.wait_for_timeout(300)
    assert await page.evaluate("typeof window.pwned") == "undefined"
    assert XSS in await page.locator("#body").inner_text()

    # control: the same text put in as markup does run, so the checks above could have failed
    await page.evaluate("(t) => { document.getElementById('body').innerHTML = t; }", inbound["text"])
    await page.wait_for_function("window.pwned === 2", timeout=5_000)


async def test_the_embedded_form_works_inside_another_site(hub, page):
    # The company's own site, on another origin ("localhost" is not "127.0.0.1").
    site_port = free_port()

    async def home(_request):
        return web.Response(
            text=f"""<!doctype html><html lang="en"><head><title>Shop</title></head><body>
            <h1>Our shop</h1><p>Questions? Write to us:</p>
            <script src="{hub.base}/forms/contact/embed.js" async></script>
            </body></html>""",
            content_type="text/html",
        )

    site_app = web.Application()
    site_app.router.add_get("/", home)
    site = TestServer(site_app, host="127.0.0.1", port=site_port)
    await site.start_server()
    try:
        await page.goto(f"http://localhost:{site_port}/")
        frame_el = page.locator("iframe[title='Contact us']")
        await frame_el.wait_for()
        # the frame grows to the form's height, reported by the form page
        await page.wait_for_function(
            "document.querySelector('iframe').style.height.endsWith('px')", timeout=10_000
        )
        frame = page.frame_locator("iframe[title='Contact us']")
        await frame.get_by_label("Your name").wait_for()
        await frame.get_by_label("Your name").fill("Ben Okafor")
        await frame.get_by_label("Email").fill("ben@example.com")
        await frame.get_by_label("Subject").fill("Kettle")
        await frame.get_by_label("Message").fill("Is the blue kettle in stock?")
        await asyncio.sleep(0.6)
        await frame.get_by_role("button", name="Send").click()
        reference = frame.locator(".reference")
        await reference.wait_for()
        cid = int((await reference.inner_text()).lstrip("#"))
        assert count(hub.settings, f"SELECT count(*) FROM conversation WHERE id = {cid} AND channel = 'webform'") == 1
    finally:
        await site.close()
