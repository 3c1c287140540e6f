"""The unified inbox in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by
Playwright against the hub served by aiohttp's TestServer, in the test's event loop.

What only a browser shows: the pages work under the hub's strict CSP (no inline script), an agent
signs in and works by labels and buttons, one customer's email and Telegram messages read as one
thread, a knowledge-base suggestion goes into the reply with one click and is recorded as used, a
reply's delivery state turns to sent, and another agent's screen updates live (new messages, the
collision notice). The main screens are captured on every run (into the temporary directory);
`make screenshots` runs this module with SERVICEHUB_SCREENSHOTS=1 to refresh docs/screenshots/, so a
test run leaves the working tree as it found it.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import text

from hub.auth.accounts import create_agent, create_token
from hub.config.settings import Settings, SlaSettings
from hub.contract import clock
from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.customers.linking import issue_code
from hub.demo.articles import seed_knowledge_base
from hub.ingest.pipeline import ingest
from hub.sla import timers as sla
from hub.store.db import make_engine
from hub.web.app import create_app
from tests.support.browser import PHONE, SCREENSHOTS, csp_errors, kettle_lid, new_page, post_message, scalar, sign_in
from tests.support.serverproc import free_port

# The knowledge base's model loads in the background when the hub starts (tens of seconds on a
# busy two-core machine): the suggestion test waits for it.
pytestmark = pytest.mark.timeout(240)


@pytest.fixture
async def hub(request, tmp_path, sqlite_template):
    """The hub with two agents and one customer's two conversations; a test can pass settings of
    its own through indirect parametrisation (a dict of Settings fields)."""
    db = tmp_path / "servicehub.db"
    shutil.copy(sqlite_template, db)
    port = free_port()
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{db}", public_url=f"http://127.0.0.1:{port}",
                        outbox_poll_seconds=0.05, login_rate_per_minute=1000, **getattr(request, "param", {}))
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "ada@example.com", "ada password", role="admin", name="Ada Lovelace")
    create_agent(engine, "bo@example.com", "bo password", role="agent", name="Bo Diddley")
    seed_knowledge_base(engine)
    # One customer, two channels: an email, then the same person on Telegram (linked by a code the
    # agent gave her), which continues the same conversation.
    mail = ingest(engine, InboundMessage(
        channel="email", external_id="<q1@example.com>", sender=Sender("ana@example.com", "Ana Silva"),
        subject="Delivery to Lagos", text="How long does delivery to Lagos, Nigeria take? Do I pay customs duties?"))
    code, _ = issue_code(engine, mail.customer_id)
    ingest(engine, InboundMessage(channel="telegram", external_id="tg-99", sender=Sender("4242", "Ana S", "telegram"),
                                  text=f"/start {code}", thread=ThreadHints(thread_key="4242"), link_code=code))
    tg = ingest(engine, InboundMessage(
        channel="telegram", external_id="tg-100", sender=Sender("4242", "Ana S", "telegram"),
        text="Hi, I also wrote by email about my parcel to Lagos.", thread=ThreadHints(thread_key="4242")))
    assert tg.conversation_id == mail.conversation_id
    server = TestServer(create_app(settings), host="127.0.0.1", port=port)
    await server.start_server()
    server.settings = settings
    server.engine = engine
    server.base = f"http://127.0.0.1:{port}"
    server.mail, server.tg = mail, tg
    server.integration = create_token(engine, "shop", role="integration")
    yield server
    await server.close()
    engine.dispose()


async def test_an_agent_answers_from_one_timeline_with_a_suggestion(hub, browser):
    page = await new_page(browser)
    await page.goto(f"{hub.base}/inbox/login")
    await page.screenshot(path=str(SCREENSHOTS / "inbox-login.png"))
    await sign_in(page, hub.base, "ada@example.com", "ada password")

    # the inbox: Ana's one conversation (email, then Telegram), unread, with channel and subject
    rows = page.locator("#rows tr")
    await page.get_by_role("link", name="Delivery to Lagos").wait_for()
    assert await rows.count() == 1
    assert await page.locator("#rows tr.unread").count() == 1
    listing = await page.locator("#rows").inner_text()
    assert "email" in listing and "Delivery to Lagos" in listing
    await page.screenshot(path=str(SCREENSHOTS / "inbox-list.png"))

    # one thread: the email and the Telegram message, each with its channel
    await page.get_by_role("link", name="Delivery to Lagos").click()
    await page.get_by_role("heading", name="Delivery to Lagos").wait_for()
    timeline = page.locator("#timeline")
    assert "How long does delivery to Lagos" in await timeline.inner_text()
    assert "I also wrote by email" in await timeline.inner_text()
    assert await timeline.locator(".chan-email").count() >= 1 and await timeline.locator(".chan-telegram").count() >= 1

    # a suggestion from the knowledge base, inserted with one click and recorded as used
    insert = page.get_by_role("button", name="Insert into reply").first
    await insert.wait_for(timeout=180_000)
    await page.screenshot(path=str(SCREENSHOTS / "inbox-conversation.png"), full_page=True)
    await insert.click()
    reply = page.get_by_label("Your reply")
    assert "Lagos" in await reply.input_value()
    for _ in range(100):
        if scalar(hub.engine, "SELECT count(*) FROM kb_feedback WHERE verdict = 'used'"):
            break
        await asyncio.sleep(0.1)
    assert scalar(hub.engine, "SELECT count(*) FROM kb_feedback WHERE verdict = 'used' AND conversation_id = :c",
                  c=hub.mail.conversation_id) == 1

    # send it: the reply shows in the thread, and its delivery state turns to sent (log channel)
    await reply.fill("Hello Ana, delivery to Lagos takes 7-12 working days.")
    await page.get_by_role("button", name="Send reply").click()
    sent = page.locator("#timeline .entry.kind-reply", has_text="7-12 working days")
    await sent.wait_for()  # in place: the timeline refreshes without a page load
    await sent.locator(".delivery-state", has_text="sent").wait_for()
    assert not csp_errors(page), page.console_errors


async def test_another_agent_sees_new_messages_and_who_is_there_live(hub, browser):
    ada = await new_page(browser)
    await sign_in(ada, hub.base, "ada@example.com", "ada password")
    bo = await new_page(browser)
    await sign_in(bo, hub.base, "bo@example.com", "bo password")

    # Ada reads the conversation; Bo watches the inbox list
    await ada.goto(f"{hub.base}/inbox/c/{hub.mail.conversation_id}")
    await ada.wait_for_selector("body[data-live='on']", state="attached")
    await bo.goto(f"{hub.base}/inbox?view=all")
    await bo.wait_for_selector("body[data-live='on']", state="attached")

    # a new message arrives through the API: both screens show it without a reload
    await post_message(hub, {"channel": "email", "external_id": "<q2@example.com>",
                             "sender": {"address": "ana@example.com", "name": "Ana Silva"},
                             "subject": "Re: Delivery to Lagos", "in_reply_to": ["<q1@example.com>"],
                             "text": "Also: can I change the address to Abuja?"})
    await ada.locator("#timeline", has_text="change the address to Abuja").wait_for()
    await post_message(hub, kettle_lid("new-customer-1"))
    await bo.get_by_role("link", name="Broken kettle lid").wait_for()

    # collision: Bo opens the conversation Ada is on, and starts typing
    await bo.goto(f"{hub.base}/inbox/c/{hub.mail.conversation_id}")
    await ada.locator("#collision", has_text="Bo Diddley is viewing this conversation").wait_for()
    await bo.get_by_label("Your reply").type("On it")
    await ada.locator("#collision", has_text="Bo Diddley is typing a reply").wait_for()
    await ada.screenshot(path=str(SCREENSHOTS / "inbox-collision.png"))
    await bo.goto(f"{hub.base}/inbox")
    for _ in range(100):
        if "Bo Diddley" not in await ada.locator("#collision").inner_text():
            break
        await asyncio.sleep(0.1)
    assert "Bo Diddley" not in await ada.locator("#collision").inner_text()
    assert not csp_errors(ada) and not csp_errors(bo), ada.console_errors + bo.console_errors


async def test_a_click_on_a_row_survives_a_live_refresh_of_the_list(hub, browser):
    page = await new_page(browser)
    await sign_in(page, hub.base, "ada@example.com", "ada password")
    async with page.expect_response(lambda r: "/inbox/rows" in r.url) as first:
        await page.goto(f"{hub.base}/inbox?view=all")
    await (await first.value).finished()  # the refresh the stream's hello asks for

    # the agent presses on a row; a new conversation arrives and the list refreshes before release
    # on the link's first line: a link that wraps has gaps inside its bounding box
    box = await page.get_by_role("link", name="Delivery to Lagos").evaluate(
        "el => { const r = el.getClientRects()[0]; return {x: r.x, y: r.y, width: r.width, height: r.height}; }")
    await page.mouse.move(box["x"] + min(box["width"] / 2, 40), box["y"] + box["height"] / 2)
    await page.mouse.down()
    async with page.expect_response(lambda r: "/inbox/rows" in r.url) as refresh:
        await post_message(hub, kettle_lid("while-pressed"))
    await (await refresh.value).finished()
    await page.wait_for_timeout(100)  # the fragment is read: it waits for the release
    assert await page.get_by_role("link", name="Broken kettle lid").count() == 0
    await page.mouse.up()
    # the click opened the conversation pressed on
    await page.get_by_role("heading", name="Delivery to Lagos").wait_for()

    # released without a click (a press that ends elsewhere), the waiting rows go in
    await page.goto(f"{hub.base}/inbox?view=all")
    await page.get_by_role("link", name="Broken kettle lid").wait_for()
    assert not csp_errors(page), page.console_errors


async def test_screens_at_phone_width_and_the_admin_pages(hub, browser):
    page = await new_page(browser, PHONE)
    await sign_in(page, hub.base, "ada@example.com", "ada password")
    await page.screenshot(path=str(SCREENSHOTS / "inbox-list-phone.png"))
    await page.goto(f"{hub.base}/inbox/c/{hub.mail.conversation_id}")
    # one column: the side panel comes after the thread, nothing wider than the screen
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, width
    await page.screenshot(path=str(SCREENSHOTS / "inbox-conversation-phone.png"))

    desk = await new_page(browser)
    await sign_in(desk, hub.base, "ada@example.com", "ada password")
    await desk.goto(f"{hub.base}/inbox/admin/channels")
    await desk.get_by_role("heading", name="Channels").wait_for()
    await desk.screenshot(path=str(SCREENSHOTS / "inbox-admin-channels.png"))
    # keyboard: the skip link is the first stop and leads to the content
    await desk.goto(f"{hub.base}/inbox")
    await desk.keyboard.press("Tab")
    assert await desk.evaluate("document.activeElement.textContent") == "Skip to content"
    assert not csp_errors(page) and not csp_errors(desk)


# --- the side panel: each field on its own, never over a newer change ----------------------------------

# The hub assigns when the test says so (sla.run_pass below), not when its worker happens to run.
ASSIGN_WHEN_TOLD = pytest.mark.parametrize("hub", [{"sla": SlaSettings(assignment="off")}], indirect=True, ids=["assign-when-told"])


async def assign_by_load(hub) -> int:
    """The hub's automatic assignment (by load), as its worker runs it; the conversation's assignee."""
    await asyncio.to_thread(sla.run_pass, hub.engine, sla.build_rules(SlaSettings(assignment="load")), now=clock.now())
    assignee = scalar(hub.engine, "SELECT assignee_id FROM conversation WHERE id = :c", c=hub.mail.conversation_id)
    assert assignee is not None
    return assignee


def conversation_row(hub):
    with hub.engine.connect() as conn:
        return conn.execute(text("SELECT status, priority, assignee_id, version FROM conversation WHERE id = :c"),
                            {"c": hub.mail.conversation_id}).one()


@ASSIGN_WHEN_TOLD
async def test_a_priority_change_keeps_the_assignee_the_hub_chose_after_the_page_loaded(hub, browser):
    page = await new_page(browser)
    await sign_in(page, hub.base, "ada@example.com", "ada password")
    await page.goto(f"{hub.base}/inbox/c/{hub.mail.conversation_id}")
    await page.wait_for_selector("body[data-live='on']", state="attached")
    assert await page.locator("#side-fields").get_by_label("Assignee").input_value() == "none"
    assert not await page.get_by_role("button", name="Save").is_visible()  # each field saves on its own

    assignee = await assign_by_load(hub)
    name = scalar(hub.engine, "SELECT name FROM agent WHERE id = :a", a=assignee)
    # The live stream brings the panel up to date, and says what changed.
    await page.locator("#side-notice", has_text=f"assignee {name}").wait_for()
    assert await page.locator("#side-fields").get_by_label("Assignee").input_value() == str(assignee)

    async with page.expect_request(lambda r: r.url.endswith("/update")) as sent:
        await page.locator("#side-fields").get_by_label("Priority").select_option("urgent")
    posted = (await sent.value).post_data
    assert "priority=urgent" in posted and "status=" not in posted and "assignee=" not in posted
    await page.locator("#side-notice", has_text="Saved: priority urgent").wait_for()
    now = conversation_row(hub)
    assert (now.priority, now.assignee_id, now.status) == ("urgent", assignee, "open")
    assert await page.locator("#shown-priority").inner_text() == "urgent"
    assert await page.locator("#side-fields").get_by_label("Assignee").input_value() == str(assignee)
    assert not csp_errors(page), page.console_errors


@ASSIGN_WHEN_TOLD
async def test_a_change_on_a_stale_page_is_refused_and_the_page_shows_the_current_state(hub, browser):
    ada = await new_page(browser)
    await sign_in(ada, hub.base, "ada@example.com", "ada password")
    # Ada's page hears no news (a stream that is down): it stays as it was rendered.
    await ada.route("**/inbox/events**", lambda route: route.abort())
    await ada.goto(f"{hub.base}/inbox/c/{hub.mail.conversation_id}")
    bo = await new_page(browser)
    await sign_in(bo, hub.base, "bo@example.com", "bo password")
    await bo.goto(f"{hub.base}/inbox/c/{hub.mail.conversation_id}")

    # Bo resolves the conversation meanwhile.
    await bo.locator("#side-fields").get_by_label("Status").select_option("resolved")
    await bo.locator("#side-notice", has_text="Saved: status resolved").wait_for()
    assert await ada.locator("#side-fields").get_by_label("Status").input_value() == "open"

    # Ada, on her stale page, raises the priority: refused, told, and shown what is there now.
    await ada.locator("#side-fields").get_by_label("Priority").select_option("high")
    alert = ada.get_by_role("alert").filter(has_text="Not saved")
    await alert.wait_for()
    message = await alert.inner_text()
    assert "priority to high" in message and "status resolved" in message
    assert await ada.locator("#side-fields").get_by_label("Status").input_value() == "resolved"
    assert await ada.locator("#side-fields").get_by_label("Priority").input_value() == "normal"
    assert await ada.locator("#shown-status").inner_text() == "resolved"
    now = conversation_row(hub)
    assert (now.status, now.priority) == ("resolved", "normal")

    # Made again on the page as it is now, the change holds and Bo's resolution stays.
    await ada.locator("#side-fields").get_by_label("Priority").select_option("high")
    await ada.locator("#side-notice", has_text="Saved: priority high").wait_for()
    now = conversation_row(hub)
    assert (now.status, now.priority) == ("resolved", "high")
    assert not csp_errors(ada) and not csp_errors(bo), ada.console_errors + bo.console_errors


@ASSIGN_WHEN_TOLD
async def test_without_script_the_form_applies_only_what_changed_on_the_version_shown(hub, browser):
    page = await new_page(browser, script=False)
    await sign_in(page, hub.base, "ada@example.com", "ada password")
    await page.goto(f"{hub.base}/inbox/c/{hub.mail.conversation_id}")
    save = page.get_by_role("button", name="Save")
    assert await save.is_visible()

    assignee = await assign_by_load(hub)
    # The page still shows "nobody": a Save of the whole form must neither unassign nor go unnoticed.
    await page.locator("#side-fields").get_by_label("Priority").select_option("high")
    await save.click()
    await page.get_by_role("alert").filter(has_text="Not saved").wait_for()
    assert await page.locator("#side-fields").get_by_label("Assignee").input_value() == str(assignee)
    now = conversation_row(hub)
    assert (now.priority, now.assignee_id) == ("normal", assignee)

    # On the page as it is now, only the priority changes.
    await page.locator("#side-fields").get_by_label("Priority").select_option("high")
    await save.click()
    await page.get_by_role("heading", name="Delivery to Lagos").wait_for()
    now = conversation_row(hub)
    assert (now.priority, now.assignee_id, now.status) == ("high", assignee, "open")
    assert await page.locator("#side-fields").get_by_label("Assignee").input_value() == str(assignee)
