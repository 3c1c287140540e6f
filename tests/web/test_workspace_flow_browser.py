"""The workspace's list and composer in a real browser (Debian's headless Chromium through Playwright),
at desktop (1280x800) and phone (390x844) size: the list's views, its filter form and "Next page"
change the list in place (no page load: no new document is loaded and a marker set on the
window survives), the address follows so back, forward and reload show the same list, and the open
conversation stays open; an address added in the customer panel changes whom the reply goes to at
once, and the reply then goes by email; the list's rows keep to a few readable lines in the narrow
pane. The page scripts share one helper (static/i18n.js): the last test checks the copies are gone.
"""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import text as sql

from hub.auth.accounts import create_agent
from hub.config.settings import Settings, SlaSettings
from hub.contract import clock
from hub.contract.messages import InboundMessage, Sender
from hub.contract.principal import Principal
from hub.conversations import tags
from hub.ingest.pipeline import ingest
from hub.store.db import make_engine
from hub.web.app import create_app
from tests.support.browser import DESKTOP, PHONE, csp_errors, new_page, scalar, sign_in
from tests.support.serverproc import free_port

pytestmark = pytest.mark.timeout(300)

SIZES = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
STATIC = Path(__file__).resolve().parents[2] / "hub" / "web" / "inbox" / "static"
MANY = 55  # more than a page of the list (50)


@pytest.fixture
async def hub(tmp_path, sqlite_template):
    """Ada (admin); Paula's phone call (no channel can answer it), and MANY email conversations, the
    odd ones assigned to Ada; one has a long subject and a long message, tagged."""
    db = tmp_path / "servicehub.db"
    shutil.copy(sqlite_template, db)
    port = free_port()
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{db}", public_url=f"http://127.0.0.1:{port}",
                        outbox_poll_seconds=0.05, login_rate_per_minute=1000, sla=SlaSettings(assignment="off"))
    engine = make_engine(settings.effective_database_url)
    ada = create_agent(engine, "ada@example.com", "ada password", role="admin", name="Ada Lovelace")
    now = clock.now()
    call = ingest(engine, InboundMessage("voice", "flow-call", Sender("+44 20 7946 0001", "Paula Caller", "phone"),
                                         "Customer: I was charged twice.\nAgent: Let me check.", subject="Call: double charge",
                                         sent_at=now - timedelta(minutes=500)))
    ids = []
    for n in range(MANY):
        subject = (f"Order {n:03d} question" if n != MANY - 1 else
                   "A very long subject line about a parcel that went to the wrong address twice in a row")
        text = ("Hello, where is my parcel? " * (12 if n == MANY - 1 else 1)).strip()
        r = ingest(engine, InboundMessage("email", f"<flow-{n}@mail.example>", Sender(f"person{n}@example.com", f"Person {n:03d}"),
                                          text, subject=subject, sent_at=now - timedelta(minutes=400 - n)))
        ids.append(r.conversation_id)
    with engine.begin() as conn:
        conn.execute(sql("UPDATE conversation SET assignee_id = :a WHERE id = :c"), [{"a": ada, "c": c} for c in ids[1::2]])
        conn.execute(sql("UPDATE conversation SET priority = 'urgent' WHERE id = :c"), {"c": ids[-1]})
    for t in ("refund", "vip", "wrong-address"):
        tags.add_tag(engine, ids[-1], t, Principal("agent", ada, "admin", "ada@example.com"))
    server = TestServer(create_app(settings), host="127.0.0.1", port=port)
    await server.start_server()
    server.engine, server.base, server.ada, server.call, server.ids = engine, f"http://127.0.0.1:{port}", ada, call.conversation_id, ids
    yield server
    await server.close()
    engine.dispose()


async def signed_in(browser, hub, viewport, **options):
    page = await new_page(browser, viewport, **options)
    await sign_in(page, hub.base, "ada@example.com", "ada password")
    await page.wait_for_selector("body[data-live='on']", state="attached")
    await page.evaluate("window.__marker = 'no reload'")
    # Playwright reports history.pushState as a navigation of the frame too; a page load also fires
    # "domcontentloaded" and starts a new document (the marker goes).
    page.navigations = []
    page.on("domcontentloaded", lambda p: page.navigations.append(p.url))
    return page


async def not_reloaded(page) -> bool:
    return not page.navigations and await page.evaluate("window.__marker") == "no reload"


async def subjects(page) -> list[str]:
    return [s.strip() for s in await page.locator("#rows tr[data-id] .row-subject").all_inner_texts()]


@SIZES
async def test_the_rows_read_in_a_few_lines_in_the_narrow_pane(hub, browser, viewport):
    for scheme in ("light", "dark"):
        page = await signed_in(browser, hub, viewport, color_scheme=scheme)
        await page.goto(f"{hub.base}/inbox?view=all")
        name = "desktop" if viewport is DESKTOP else "phone"
        await page.screenshot(path=f"/tmp/servicehub-rows-{name}-{scheme}.png")
        await page.locator("#rows tr", has_text="Order 010").first.locator("td.subject a").click()
        await page.locator("#conv-title", has_text="Order 010").wait_for()
        await page.screenshot(path=f"/tmp/servicehub-rows-open-{name}-{scheme}.png")
        if viewport is PHONE:
            await page.get_by_role("link", name="All conversations").click()
        # every line of a row is one line high, the long ones cut with an ellipsis, nothing wider than the pane
        lines = await page.evaluate("""() => {
            const row = document.querySelector('#rows tr[data-id] td.subject .row-subject').closest('tr');
            const long = Array.from(document.querySelectorAll('#rows tr[data-id]')).find(tr => tr.textContent.includes('A very long'));
            const cell = (tr, sel) => { const el = tr.querySelector(sel); const cs = getComputedStyle(el);
                return {height: el.getBoundingClientRect().height, line: parseFloat(cs.lineHeight) || parseFloat(cs.fontSize) * 1.6,
                        cut: el.scrollWidth > el.clientWidth, ellipsis: cs.textOverflow}; };
            const pane = document.getElementById('list-pane');
            return {who: cell(row, 'td.who'), subject: cell(long, 'td.subject a'), facts: cell(long, 'td.facts'),
                    row: long.getBoundingClientRect().height, overflow: pane.scrollWidth - pane.clientWidth};
        }""")
        for key in ("who", "subject", "facts"):
            assert lines[key]["height"] <= lines[key]["line"] * 1.5, (key, lines)
        assert lines["subject"]["cut"] and lines["subject"]["ellipsis"] == "ellipsis", lines
        assert lines["row"] < 90, lines
        assert lines["overflow"] <= 1, lines
        assert not csp_errors(page), page.console_errors


# --- the list in place ------------------------------------------------------------------------------


@SIZES
async def test_views_filters_and_the_next_page_change_the_list_in_place(hub, browser, viewport):
    page = await signed_in(browser, hub, viewport)
    assert len(await subjects(page)) == 50  # the first page of "All open"
    views = page.get_by_role("navigation", name="Views")

    # a view: the rows, the view's link and the address change; the page stays
    await views.get_by_role("link", name="Mine").click()
    await page.wait_for_url(re.compile(r"/inbox\?view=mine$"))
    await page.locator("#rows tr[data-id]").nth(MANY // 2 - 1).wait_for()
    assert await page.locator("#rows tr[data-id]").count() == MANY // 2  # the odd ones are Ada's
    assert await views.get_by_role("link", name="Mine").get_attribute("aria-current") == "page"
    assert await page.evaluate("document.activeElement.textContent") == "Mine"  # the focus stays on the view chosen
    assert await page.title() == "Mine · servicehub"

    # a search typed and sent with Enter: all conversations searched, the scope offered, the caret kept
    await page.get_by_label("Search").fill("Order 007")
    await page.get_by_label("Search").press("Enter")
    await page.wait_for_url(re.compile(r"view=mine&q=Order\+007$"))
    await page.locator("#search-scope").wait_for()
    assert await subjects(page) == ["Order 007 question"]
    assert await page.evaluate("[document.activeElement.id, document.activeElement.selectionStart]") == ["q", len("Order 007")]

    # the filter form: a tag typed and sent, then a sort chosen (a choice applies at once)
    await views.get_by_role("link", name="All", exact=True).click()
    await page.wait_for_url(re.compile(r"/inbox\?view=all$"))
    await page.get_by_label("Tag").first.fill("VIP")
    await page.get_by_role("button", name="Show").click()
    await page.wait_for_url(re.compile(r"view=all&tag=vip"))
    await page.locator("#rows tr[data-id]").first.wait_for()
    assert await page.locator("#rows tr[data-id]").count() == 1
    assert await page.locator("#tag").input_value() == "vip"  # the form shows the filter as the hub reads it
    await page.get_by_label("Tag").first.fill("")
    await page.get_by_label("Sort").focus()
    await page.get_by_label("Sort").select_option("priority")
    await page.wait_for_url(re.compile(r"sort=priority"))
    await page.locator("#rows tr[data-id]").nth(40).wait_for()
    assert (await subjects(page))[0].startswith("A very long subject")  # the urgent one first
    assert await page.evaluate("document.activeElement.id") == "sort"

    # the next page, and back to the first
    await page.get_by_role("link", name="Next page").click()
    await page.wait_for_url(re.compile(r"cursor="))
    await page.locator("#rows tr[data-id]").nth(MANY + 1 - 50 - 1).wait_for()
    assert await page.locator("#rows tr[data-id]").count() == MANY + 1 - 50  # the rest, Paula's call among them
    assert await page.get_by_role("link", name="Next page").count() == 0
    assert await page.evaluate("document.activeElement.closest('#rows') !== null")  # the focus goes to the new rows
    await page.go_back()
    await page.wait_for_url(re.compile(r"sort=priority$"))
    await page.locator("#rows tr[data-id]").nth(49).wait_for()
    await page.get_by_role("link", name="Next page").wait_for()
    await page.go_back()
    await page.wait_for_url(re.compile(r"view=all&tag=vip$"))
    await page.locator("#rows tr[data-id] >> nth=1").wait_for(state="detached")
    assert await page.locator("#tag").input_value() == "vip"
    await page.go_forward()
    await page.wait_for_url(re.compile(r"sort=priority$"))
    await page.locator("#rows tr[data-id]").nth(49).wait_for()
    assert await not_reloaded(page), page.navigations

    # a reload shows the same list
    url = page.url
    await page.reload()
    assert page.url == url
    assert await page.get_by_label("Sort").input_value() == "priority"
    assert (await subjects(page))[0].startswith("A very long subject")
    assert not csp_errors(page), page.console_errors


@SIZES
async def test_the_open_conversation_stays_open_while_the_list_changes(hub, browser, viewport):
    page = await signed_in(browser, hub, viewport)
    await page.locator(f'#rows tr[data-id="{hub.ids[-1]}"] td.subject a').click()
    await page.locator("#conv-title", has_text="A very long subject").wait_for()
    cid = hub.ids[-1]
    await page.get_by_label("Your reply").fill("A draft that must stay")
    # a tag of the open conversation's row (desktop) or of its header leads to that tag's list
    if viewport is DESKTOP:
        await page.locator(f'#rows tr[data-id="{cid}"] a.tag', has_text="refund").click()
    else:
        await page.get_by_role("link", name="All conversations").click()
        await page.locator(f'#rows tr[data-id="{cid}"] a.tag', has_text="refund").click()
    await page.wait_for_url(re.compile(r"view=all&tag=refund"))
    await page.locator("#rows tr[data-id]").nth(1).wait_for(state="detached")
    assert await page.locator("#rows tr[data-id]").count() == 1
    if viewport is DESKTOP:
        # the conversation stays beside the list, its draft too, and the address keeps it open
        assert page.url.endswith(f"/inbox/c/{cid}?view=all&tag=refund")
        assert await page.get_by_label("Your reply").input_value() == "A draft that must stay"
        assert await page.locator(f'#rows tr[data-id="{cid}"]').get_attribute("aria-current") == "true"
    else:
        assert page.url.endswith("/inbox?view=all&tag=refund")
        await page.locator(f'#rows tr[data-id="{cid}"] td.subject a').click()
        await page.locator("#conv-title", has_text="A very long subject").wait_for()
        assert page.url.endswith(f"/inbox/c/{cid}?view=all&tag=refund")
        assert await page.get_by_label("Your reply").input_value() == "A draft that must stay"
    # back: the list as it was, the conversation still open beside it (on a phone, the list)
    await page.go_back()
    if viewport is PHONE:
        await page.wait_for_url(re.compile(r"/inbox\?view=all&tag=refund$"))
        await page.locator("#list-pane").wait_for()
        await page.go_back()
        await page.wait_for_url(re.compile(r"/inbox\?view=open$"))
    else:
        await page.wait_for_url(re.compile(rf"/inbox/c/{cid}\?view=open$"))
    await page.locator("#rows tr[data-id]").nth(40).wait_for()
    assert await page.locator("#conv-title", has_text="A very long subject").count() == 1
    assert await page.get_by_label("Your reply").input_value() == "A draft that must stay"
    assert await not_reloaded(page), page.navigations
    assert not csp_errors(page), page.console_errors


async def test_without_script_the_views_filters_and_next_page_are_plain_links(hub, browser):
    page = await new_page(browser, DESKTOP, script=False)
    await sign_in(page, hub.base, "ada@example.com", "ada password")
    await page.get_by_role("navigation", name="Views").get_by_role("link", name="Mine").click()
    await page.wait_for_url(re.compile(r"/inbox\?view=mine$"))
    assert await page.locator("#rows tr[data-id]").count() == MANY // 2
    await page.get_by_label("Sort").select_option("priority")
    await page.get_by_role("button", name="Show").click()
    await page.wait_for_url(re.compile(r"sort=priority"))
    assert await page.get_by_role("link", name="Next page").count() == 0
    await page.goto(f"{hub.base}/inbox?view=all")
    await page.get_by_role("link", name="Next page").click()
    await page.wait_for_url(re.compile(r"cursor="))
    assert await page.locator("#rows tr[data-id]").count() == MANY + 1 - 50


async def test_a_refused_filter_says_why_and_keeps_the_list(hub, browser):
    page = await signed_in(browser, hub, DESKTOP)
    before = await subjects(page)
    await page.evaluate("workspace.setListQuery('view=nosuch')")
    status = page.locator("#workspace-status")
    await status.filter(has_text="view must be one of").wait_for()
    assert await subjects(page) == before
    assert page.url.endswith("/inbox")
    assert await not_reloaded(page)


# --- whom the reply goes to ------------------------------------------------------------------------


@SIZES
async def test_an_address_added_in_the_panel_changes_whom_the_reply_goes_to(hub, browser, viewport):
    page = await signed_in(browser, hub, viewport)
    await page.goto(f"{hub.base}/inbox/c/{hub.call}")
    await page.evaluate("window.__marker = 'no reload'")
    page.navigations.clear()
    notice = page.locator(".no-channel")
    assert "No reply can reach Paula Caller" in await notice.inner_text()
    await page.get_by_label("Internal note (never sent; @name mentions a colleague)").fill("Called back, no answer")

    panel = page.locator("[data-customer-panel]")
    await panel.get_by_label("Address or phone number").fill("paula@example.com")
    await panel.get_by_role("button", name="Add address").click()
    await page.locator("#reply-to", has_text="To: paula@example.com by email").wait_for()
    assert await notice.count() == 0
    assert await page.get_by_label("Internal note (never sent; @name mentions a colleague)").input_value() == "Called back, no answer"

    # the form that came in works like the one a page load brings: "/" for canned responses, posting in place
    await page.get_by_label("Your reply").fill("We refunded the second charge.")
    await page.get_by_role("button", name="Send reply").click()
    await page.locator("#timeline .entry.kind-reply", has_text="refunded the second charge").wait_for()
    assert await page.get_by_label("Your reply").input_value() == ""
    assert scalar(hub.engine, "SELECT channel FROM message WHERE text = 'We refunded the second charge.'") == "email"
    assert scalar(hub.engine, "SELECT o.channel FROM outbox o JOIN message m ON m.id = o.message_id "
                              "WHERE m.text = 'We refunded the second charge.'") == "email"

    # another address while a draft is written: whom it goes to is fetched again, the draft stays
    await page.get_by_label("Your reply").fill("Draft kept")
    await panel.get_by_label("Address or phone number").fill("paula.caller@example.org")
    await panel.get_by_role("button", name="Add address").click()
    await panel.locator(".identities li", has_text="paula.caller@example.org").wait_for()
    await page.locator("#reply-to", has_text="by email").wait_for()
    assert await page.get_by_label("Your reply").input_value() == "Draft kept"

    # both addresses taken away again: no channel can receive, the notice says so, the draft stays unsent
    for address in ("paula.caller@example.org", "paula@example.com"):
        await panel.get_by_role("button", name=f"Remove {address}").click()
        await panel.locator(".identities li", has_text=address).wait_for(state="detached")
    await notice.wait_for()
    assert "No reply can reach Paula Caller" in await notice.inner_text()
    assert await page.get_by_label("Your reply").input_value() == "Draft kept"
    assert await page.get_by_role("button", name="Send reply").is_disabled()
    assert await not_reloaded(page), page.navigations
    assert not csp_errors(page), page.console_errors


# --- one shared helper -------------------------------------------------------------------------------


def test_the_page_scripts_share_one_helper_for_words_and_the_csrf_token():
    scripts = {p.name: p.read_text(encoding="utf-8") for p in STATIC.glob("*.js")}
    assert "i18n.js" in scripts
    helper = scripts.pop("i18n.js")
    assert 'getElementById("i18n")' in helper and 'meta[name="csrf-token"]' in helper
    for name, text in scripts.items():
        assert 'getElementById("i18n")' not in text, name
        assert "csrf-token" not in text, name
        assert "WORDS" not in text, name
        assert "window.servicehub" in text, name
    from hub.web.inbox import ASSETS

    assert ASSETS["i18n.js"] == "text/javascript"
    base = (STATIC.parent / "templates" / "base.html").read_text(encoding="utf-8")
    scripts_in_order = re.findall(r"asset\('(\w+)\.js'\)", base)
    assert scripts_in_order[0] == "i18n" and scripts_in_order.count("i18n") == 1, scripts_in_order


async def test_the_helper_is_loaded_once_and_first(hub, browser):
    page = await signed_in(browser, hub, DESKTOP)
    loaded = await page.evaluate("Array.from(document.scripts).map(s => new URL(s.src).pathname)")
    assert loaded.count("/inbox/static/i18n.js") == 1
    assert loaded[0] == "/inbox/static/i18n.js"
    assert await page.evaluate("typeof window.servicehub.T") == "function"


# --- the fragments the scripts ask for -----------------------------------------------------------------


async def test_the_list_and_recipient_fragments_need_a_session_and_refuse_guesses(hub):
    import aiohttp

    from tests.support.inbox import sign_in as form_sign_in

    async with aiohttp.ClientSession(base_url=hub.base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:  # cookies for 127.0.0.1
        for path in ("/inbox/list?view=mine", f"/inbox/c/{hub.call}/recipient"):
            resp = await client.get(path, allow_redirects=False)
            assert resp.status == 303 and resp.headers["Location"].startswith("/inbox/login"), path
        await form_sign_in(client, "ada@example.com", "ada password")
        resp = await client.get("/inbox/list?view=mine&sort=priority&tag=VIP")
        html = await resp.text()
        assert resp.status == 200 and 'data-list-query="view=mine&amp;sort=priority&amp;tag=vip"' in html
        for query, problem in (("view=nosuch", "view must be one of"), ("sort=x", "sort must be one of"), ("within=x", "within must be")):
            resp = await client.get(f"/inbox/list?{query}")
            assert resp.status == 422 and problem in await resp.text(), query
        # a pathological search is answered (and cut), never an error
        resp = await client.get("/inbox/list", params={"q": "((%" * 600})
        assert resp.status in (200, 422)
        for cid in ("999999", "0", "-1", "abc", "1e9"):
            resp = await client.get(f"/inbox/c/{cid}/recipient")
            assert resp.status in (404, 422), (cid, resp.status)
        resp = await client.get(f"/inbox/c/{hub.call}/recipient")
        assert resp.status == 200 and "No reply can reach Paula Caller" in await resp.text()
        resp = await client.get(f"/inbox/c/{hub.ids[0]}/recipient")
        text = await resp.text()
        assert 'id="reply-recipient"' in text and "person0@example.com" in text and 'name="_csrf"' in text
