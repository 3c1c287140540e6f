"""The inbox list in a real browser (headless Chromium, Playwright) at desktop and phone size: a
search in the default view finds resolved conversations and offers the view as a chip; checked
rows are changed in bulk (tag, assign, snooze) without a reload; the conversation header's tags and
snooze work in place; a snoozed conversation comes back to the open list by itself, live; and the
bulk bar works without JavaScript (post and redirect)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import aiohttp
import pytest

from hub.auth.accounts import create_token
from hub.config.settings import KnowledgeSettings, SlaSettings
from hub.contract import clock
from hub.contract.messages import Sender
from hub.conversations.actions import update_conversation
from hub.conversations.search.message_index import index_all_messages
from hub.store.db import index_search_queue, make_engine
from tests.support.browser import DESKTOP, PHONE, csp_errors, new_page, sign_in
from tests.support.hub import add_agent, fresh_sqlite, make_settings, seed_conversation, serve_app

pytestmark = pytest.mark.timeout(240)
SIZES = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]



@pytest.fixture
async def hub(tmp_path, sqlite_template):
    """Ada (admin) and Bo (agent); Chloé's resolved phone call, two open emails."""
    # As this module has always run it: the model warms up at start and automatic assignment is on.
    settings = make_settings(tmp_path, fresh_sqlite(tmp_path, sqlite_template), snooze_poll_seconds=0.2,
                             kb=KnowledgeSettings(), sla=SlaSettings())
    engine = make_engine(settings.effective_database_url)
    ada = add_agent(engine, "Ada Lovelace", role="admin")
    add_agent(engine, "Bo Diddley")
    call = seed_conversation(engine, 1, channel="voice", external_id="call-1",
                             sender=Sender("+44 20 7946 0958", "Chloé Martin", kind="phone"), text="My parcel for order SO-48213 never came to 12 Rue des Lilas")
    update_conversation(engine, call.conversation_id, {"status": "resolved"}, ada)
    kettle = seed_conversation(engine, 2, external_id="<k1@example.com>", sender=Sender("zoe@example.com", "Zoe Brand"),
                               subject="Broken kettle lid", text="The lid of my kettle broke.")
    lamp = seed_conversation(engine, 3, external_id="<l1@example.com>", sender=Sender("max@example.com", "Max Held"),
                             subject="Lamp flickers", text="My new lamp flickers at night.")
    index_all_messages(engine)
    index_search_queue(engine)
    async with serve_app(settings, engine) as server:
        server.call, server.kettle, server.lamp = call.conversation_id, kettle.conversation_id, lamp.conversation_id
        async with aiohttp.ClientSession() as s:
            resp = await s.post(f"{server.base}/api/v1/auth/login", json={"email": "ada@example.com", "password": "ada password"})
            server.token = (await resp.json())["token"]
        yield server


async def _mark(page) -> None:
    """A flag on the window that a full page load would drop."""
    await page.evaluate("window.notReloaded = true")


async def _still_same_page(page) -> bool:
    return await page.evaluate("window.notReloaded === true")


@pytest.mark.parametrize("viewport", SIZES)
async def test_a_search_in_the_open_view_finds_resolved_conversations_and_offers_the_view(hub, browser, viewport):
    page = await new_page(browser, viewport)
    await sign_in(page, hub.base, "bo@example.com", "bo password")
    rows = page.locator("#rows tr[data-id]")
    await page.get_by_label("Search").fill("SO-48213")
    await page.get_by_label("Search").press("Enter")
    await page.locator(f'#rows tr[data-id="{hub.call}"]').wait_for()
    assert await rows.count() == 1
    assert "all conversations" in await page.locator("#search-scope").inner_text()
    chip = page.locator("#scope-chip")
    assert (await chip.inner_text()).strip() == "Only in: All open"
    await chip.click()
    await page.get_by_text("No conversations here.").wait_for()
    assert "within=view" in page.url
    await page.locator("#scope-chip").click()  # off again
    await page.locator(f'#rows tr[data-id="{hub.call}"]').wait_for()
    # the customer's name (as written, and without its accent or case: only her name holds it), the phone, a word of the message
    for q in ("Chloé", "chloe", "CHLOE MARTIN", "7946 0958", "parcel"):
        await page.get_by_label("Search").fill("nothing like this")  # an empty list between: each q's own answer is awaited
        await page.get_by_label("Search").press("Enter")
        await page.get_by_text("No conversations here.").wait_for()
        await page.get_by_label("Search").fill(q)
        await page.get_by_label("Search").press("Enter")
        await page.locator(f'#rows tr[data-id="{hub.call}"]').wait_for()
        assert await rows.count() == 1, q
    await page.screenshot(path=f"/tmp/servicehub-list-search-{viewport['width']}.png")
    assert csp_errors(page) == []


@pytest.mark.parametrize("viewport", SIZES)
async def test_checked_rows_are_tagged_assigned_and_snoozed_in_place(hub, browser, viewport):
    page = await new_page(browser, viewport)
    await sign_in(page, hub.base, "bo@example.com", "bo password")
    await _mark(page)
    first = page.locator(f'#rows tr[data-id="{hub.kettle}"]')
    # the row previews the last message and shows how long the customer has waited
    assert "The lid of my kettle broke." in await first.inner_text()
    assert await first.locator("td.waiting time").count() == 1
    for cid in (hub.kettle, hub.lamp):
        await page.get_by_label(f"Select conversation #{cid}").check()
    assert "2 selected" in await page.locator("#bulk-count").inner_text()
    await page.get_by_label("Action").select_option("tag")
    await page.locator("#bulk-tag").fill("Fragile")
    await page.locator("#bulk-apply").click()
    await page.get_by_text("2 changed.").wait_for()
    for cid in (hub.kettle, hub.lamp):
        await page.locator(f'#rows tr[data-id="{cid}"] a.tag', has_text="fragile").wait_for()
    await page.get_by_label(f"Select conversation #{hub.lamp}").check()
    await page.get_by_label("Action").select_option("assign")
    await page.locator("#bulk-assignee").select_option("me")
    await page.locator("#bulk-apply").click()
    await page.locator(f'#rows tr[data-id="{hub.lamp}"]', has_text="Bo Diddley").wait_for()
    await page.get_by_label(f"Select conversation #{hub.kettle}").check()
    await page.get_by_label("Action").select_option("snooze")
    await page.locator("#bulk-preset").select_option("tomorrow")
    await page.locator("#bulk-apply").click()
    await page.locator(f'#rows tr[data-id="{hub.kettle}"]').wait_for(state="detached")  # out of "All open"
    assert await _still_same_page(page)
    await page.screenshot(path=f"/tmp/servicehub-list-bulk-{viewport['width']}.png")
    await page.goto(f"{hub.base}/inbox?view=snoozed")
    await page.locator(f'#rows tr[data-id="{hub.kettle}"]', has_text="until").wait_for()
    await page.goto(f"{hub.base}/inbox?view=all&tag=fragile")
    assert await page.locator("#rows tr[data-id]").count() == 2
    assert csp_errors(page) == []


@pytest.mark.parametrize("viewport", SIZES)
async def test_the_conversation_header_tags_and_snoozes_in_place(hub, browser, viewport):
    page = await new_page(browser, viewport)
    await sign_in(page, hub.base, "ada@example.com", "ada password")
    await page.goto(f"{hub.base}/inbox/c/{hub.lamp}")
    await _mark(page)
    await page.get_by_label("Add a tag").fill("Needs Parts")
    await page.get_by_role("button", name="Tag", exact=True).click()
    await page.locator("#tag-editor li.tag", has_text="needs parts").wait_for()
    await page.get_by_label("Add a tag").fill("warranty")
    await page.get_by_label("Add a tag").press("Enter")
    await page.locator("#tag-editor li.tag", has_text="warranty").wait_for()
    await page.get_by_role("button", name="Remove tag needs parts").click()
    await page.locator("#tag-editor li.tag", has_text="needs parts").wait_for(state="detached")
    await page.keyboard.press("Escape")
    await page.keyboard.press("s")  # the shortcut puts the focus on the snooze control
    assert await page.evaluate("document.activeElement && document.activeElement.id") == "snooze-preset"
    await page.locator("#snooze-preset").select_option("next_week")
    await page.get_by_role("button", name="Snooze", exact=True).click()
    # The snoozed conversation leaves the view: the next one of the list opens, as after a resolve.
    await page.wait_for_url(f"**/inbox/c/{hub.kettle}**")
    assert await _still_same_page(page)
    await page.screenshot(path=f"/tmp/servicehub-conversation-tags-{viewport['width']}.png")
    async with aiohttp.ClientSession() as s:
        got = await (await s.get(f"{hub.base}/api/v1/conversations/{hub.lamp}", headers={"Authorization": f"Bearer {hub.token}"})).json()
    assert got["status"] == "snoozed"
    until = clock.now() + timedelta(days=1)
    assert got["snoozed_until"] > until.isoformat()[:10]  # next week, not tomorrow
    assert csp_errors(page) == []


@pytest.mark.parametrize("viewport", SIZES)
async def test_a_snoozed_conversation_comes_back_to_the_open_list_by_itself(hub, browser, viewport):
    page = await new_page(browser, viewport)
    await sign_in(page, hub.base, "bo@example.com", "bo password")
    async with aiohttp.ClientSession() as s:
        resp = await s.post(f"{hub.base}/api/v1/conversations/{hub.kettle}/snooze", headers={"Authorization": f"Bearer {hub.token}"},
                            json={"until": (clock.now() + timedelta(seconds=3)).isoformat()})
        assert resp.status == 200, await resp.text()
    await page.locator(f'#rows tr[data-id="{hub.kettle}"]').wait_for(state="detached")
    await _mark(page)
    # back, at the top, without a reload
    await page.locator(f'#rows tr[data-id="{hub.kettle}"]').wait_for(timeout=20_000)
    assert await page.locator("#rows tr[data-id]").first.get_attribute("data-id") == str(hub.kettle)
    assert await _still_same_page(page)


async def test_the_bulk_bar_works_without_script(hub, browser):
    page = await new_page(browser, DESKTOP, script=False)
    await sign_in(page, hub.base, "bo@example.com", "bo password")
    await page.get_by_label(f"Select conversation #{hub.lamp}").check()
    await page.get_by_label("Action").select_option("resolve")
    await page.locator("#bulk-apply").click()
    await page.get_by_role("navigation", name="Views").wait_for()
    await page.locator(f'#rows tr[data-id="{hub.lamp}"]').wait_for(state="detached")
    assert await page.locator(f'#rows tr[data-id="{hub.kettle}"]').count() == 1


async def test_bulk_from_the_api_refuses_other_roles_and_reports_guessed_ids(hub):
    integration = create_token(hub.engine, "shop", role="integration")
    async with aiohttp.ClientSession() as s:
        url = f"{hub.base}/api/v1/conversations/bulk"
        body = {"ids": [hub.lamp, 987654], "action": "tag", "tag": "checked"}
        resp = await s.post(url, headers={"Authorization": f"Bearer {integration}"}, json=body)
        assert resp.status == 403
        resp = await s.post(url, json=body)
        assert resp.status == 401
        resp = await s.post(url, headers={"Authorization": f"Bearer {hub.token}"}, json=body)
        got = await resp.json()
        assert resp.status == 200 and got["done"] == 1
        assert [(r["id"], r["ok"]) for r in got["results"]] == [(hub.lamp, True), (987654, False)]
        resp = await s.post(url, headers={"Authorization": f"Bearer {hub.token}"}, json={**body, "ids": list(range(1, 300))})
        assert resp.status == 422
        resp = await s.post(url, headers={"Authorization": f"Bearer {hub.token}"}, json={**body, "tag": "bad\u0007tag"})
        assert resp.status in (400, 422)
        await asyncio.sleep(0)


async def test_a_conversation_back_from_snooze_is_announced_on_the_live_stream(hub):
    """The event the notifications read: kind snooze_back with the conversation and its assignee."""
    import json

    async with aiohttp.ClientSession(cookies={"servicehub_session": hub.token}) as s:  # the stream is a page's: by cookie
        auth = {"Authorization": f"Bearer {hub.token}"}
        resp = await s.patch(f"{hub.base}/api/v1/conversations/{hub.lamp}", headers=auth, json={"assignee_id": 1})
        assert resp.status == 200, await resp.text()
        async with s.get(f"{hub.base}/inbox/events", allow_redirects=False) as stream:
            assert stream.status == 200
            await stream.content.readline()
            resp = await s.post(f"{hub.base}/api/v1/conversations/{hub.lamp}/snooze", headers=auth,
                                json={"until": (clock.now() + timedelta(seconds=1)).isoformat()})
            assert resp.status == 200
            while True:
                line = (await asyncio.wait_for(stream.content.readline(), 10)).decode()
                if line.startswith("data:") and json.loads(line[5:])["type"] == "snooze_back":
                    event = json.loads(line[5:])
                    break
    assert event == {"type": "snooze_back", "conversation_id": hub.lamp, "assignee_id": 1}
