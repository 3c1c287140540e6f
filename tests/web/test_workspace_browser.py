"""The agent's workspace in a real browser (Debian's headless Chromium through Playwright), at desktop
(1280x800) and phone (390x844) size: the list beside the open conversation, conversations opened
without a page load, the next one after a resolve, keyboard shortcuts, the composer posting in
place (canned responses with "/", a suggestion inserted whole), whom a reply goes to, times in the
agent's zone, and dark mode.

"No full page reload" is checked the way an agent would notice it: a value the test sets on the
window after signing in (window.__marker) is still there at the end; any page load would wipe it.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest

from hub.auth.accounts import create_token
from hub.config.settings import KnowledgeSettings
from hub.contract import clock
from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.conversations.macros import create_macro
from hub.demo.articles import seed_knowledge_base
from hub.ingest.pipeline import ingest
from hub.store.db import make_engine
from tests.support.browser import DESKTOP, PHONE, SCREENSHOTS, csp_errors, kettle_lid, new_page, post_message, scalar, sign_in
from tests.support.hub import add_agent, fresh_sqlite, make_settings, serve_app

# The knowledge base's model loads in the background when the hub starts: the suggestion test waits for it.
pytestmark = pytest.mark.timeout(300)

SIZES = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])


def demo_messages(now) -> list[InboundMessage]:
    """Five customers as the demo has them, on every channel, the most recent last."""
    ago = lambda minutes: now - timedelta(minutes=minutes)  # noqa: E731
    return [
        InboundMessage("email", "<ws-1@mail.example>", Sender("ana.silva@example.com", "Ana Silva"),
                       "Hello, my order #A1001 was due on Monday and has not arrived. Can you check where it is?",
                       subject="Where is my order A1001?", sent_at=ago(300)),
        InboundMessage("telegram", "ws-tg-1", Sender("48151623", "Ben Okafor"),
                       "Hi! Do you have the blue kettle in stock? And how long is delivery to Lagos?", sent_at=ago(120),
                       thread=ThreadHints(thread_key="48151623")),
        # A phone call from a customer the hub knows only by her number: no reply can reach her.
        InboundMessage("voice", "ws-call-1", Sender("+44 20 7946 0000", "Paula Caller", "phone"),
                       "Customer: I was charged twice for my last order.\nAgent: I am sorry, let me check that.",
                       subject="Call: double charge", sent_at=ago(90)),
        InboundMessage("webform", "ws-form-1", Sender("dmitri@example.org", "Dmitri Volkov"),
                       "The product page says 'ships in 2 days' but checkout says 2 weeks. Which is right?",
                       subject="Delivery time question", sent_at=ago(60)),
        InboundMessage("email", "<ws-2@mail.example>", Sender("chloe@example.com", "Chloé Martin"),
                       "Hello, could I change the delivery address of my parcel? Thank you, Chloé",
                       subject="Change of address", sent_at=ago(20)),
    ]


@pytest.fixture
async def hub(tmp_path, sqlite_template):
    # The model warms up at start (the suggestion test waits for it); assignment runs when a test
    # does it: the list's order and assignees stay as the test set them.
    settings = make_settings(tmp_path, fresh_sqlite(tmp_path, sqlite_template), kb=KnowledgeSettings())
    engine = make_engine(settings.effective_database_url)
    ada = add_agent(engine, "Ada Lovelace", role="admin")
    add_agent(engine, "Bo Diddley")
    seed_knowledge_base(engine)
    create_macro(engine, "Shipping times", "Hello {{ customer.name }}, standard delivery takes 2-4 working days.", ada)
    create_macro(engine, "Refund", "We have refunded the second charge.", ada)
    results = [ingest(engine, m) for m in demo_messages(clock.now())]
    async with serve_app(settings, engine) as server:
        server.ada = ada.id
        server.ids = [r.conversation_id for r in results]  # oldest first; the list shows the newest first
        server.integration = create_token(engine, "shop", role="integration")
        yield server


async def signed_in(browser, hub, viewport, **options):
    page = await new_page(browser, viewport, **options)
    await sign_in(page, hub.base, "ada@example.com", "ada password")
    await page.evaluate("window.__marker = 'no reload'")
    return page


async def not_reloaded(page) -> bool:
    return await page.evaluate("window.__marker") == "no reload"


async def open_row(page, subject: str, title: str | None = None):
    """Open a conversation from the list (on a phone the list is the pane shown) by the words its
    row shows; `title`: the conversation's heading when it is not those words."""
    link = page.locator("#rows tr", has_text=subject).first.locator("td.subject a")
    try:
        await link.wait_for(timeout=5000)
    except Exception:
        raise AssertionError(f"{subject!r} is not in the list: {await page.locator('#rows').inner_text()}") from None
    await link.click()
    await page.locator("#conv-title", has_text=title or subject).wait_for()


def conv_row(hub, cid: int):
    from sqlalchemy import text

    with hub.engine.connect() as conn:
        return conn.execute(text("SELECT status, priority, assignee_id FROM conversation WHERE id = :c"), {"c": cid}).one()


# --- the workspace: list | conversation | customer -----------------------------------------------------


@SIZES
async def test_a_conversation_opens_beside_the_list_without_a_page_load(hub, browser, viewport):
    page = await signed_in(browser, hub, viewport)
    await page.wait_for_selector("body[data-live='on']", state="attached")
    await open_row(page, "Change of address")
    cid = hub.ids[4]
    assert page.url.endswith(f"/inbox/c/{cid}?view=open")
    assert "Change of address" in await page.title()
    customer = page.locator("aside.side .customer")
    if viewport is DESKTOP:
        # three panes side by side: the list, the conversation, the customer
        lst = await page.locator("#list-pane").bounding_box()
        thread = await page.locator("section.thread").bounding_box()
        side = await customer.bounding_box()
        assert lst["x"] + lst["width"] <= thread["x"] + 1 and thread["x"] + thread["width"] <= side["x"] + 1
        assert await page.locator("#rows tr.current").get_attribute("data-id") == str(cid)
        await page.screenshot(path=str(SCREENSHOTS / "inbox-workspace.png"))
    else:
        # one pane at a time: the conversation, with a way back to the list
        assert not await page.locator("#list-pane").is_visible()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"] + 1, width
        await page.get_by_role("link", name="All conversations").click()
        await page.locator("#rows").get_by_role("link", name="Delivery time question").wait_for()
        assert not await page.locator("#conversation-pane").is_visible()
        await open_row(page, "Delivery time question")
        await page.go_back()
        await page.locator("#rows").get_by_role("link", name="Change of address").wait_for()
        await page.go_forward()
        await page.locator("#conv-title", has_text="Delivery time question").wait_for()
        await page.screenshot(path=str(SCREENSHOTS / "inbox-workspace-phone.png"))
    assert await customer.count() == 1

    # the list stays live beside the open conversation
    await post_message(hub, kettle_lid("ws-new"))
    if viewport is PHONE:
        await page.get_by_role("link", name="All conversations").click()
    await page.locator("#rows").get_by_role("link", name="Broken kettle lid").wait_for()
    assert await not_reloaded(page)

    # a direct load of the conversation's address shows the whole workspace
    other = await signed_in(browser, hub, viewport)
    await other.goto(f"{hub.base}/inbox/c/{cid}")
    await other.locator("#conv-title", has_text="Change of address").wait_for()
    assert await other.locator("#rows tr").count() >= 5
    assert await other.locator("#list-pane").is_visible() == (viewport is DESKTOP)
    assert not csp_errors(page) and not csp_errors(other), page.console_errors + other.console_errors


@SIZES
async def test_a_walk_through_five_conversations_needs_no_page_load(hub, browser, viewport):
    page = await signed_in(browser, hub, viewport)
    subjects = ["Change of address", "Delivery time question", "Call: double charge", "Hi! Do you have the blue kettle",
                "Where is my order A1001?"]
    await open_row(page, subjects[0])
    for n, subject in enumerate(subjects):
        await page.locator("#conv-title", has_text=subject).wait_for()
        cid = int(await page.locator("#conversation").get_attribute("data-conversation"))
        if await page.locator("#reply-form").count():
            await page.get_by_label("Your reply").fill(f"Thank you, answer {n}.")
            await page.get_by_role("button", name="Send reply").click()
            await page.locator("#timeline .entry.kind-reply", has_text=f"answer {n}").wait_for()
            assert await page.get_by_label("Your reply").input_value() == ""
        else:
            await page.get_by_label("Internal note").fill(f"Called back, note {n}.")
            await page.get_by_role("button", name="Add note").click()
            await page.locator("#timeline .entry.kind-note", has_text=f"note {n}").wait_for()
        # resolve: the next conversation of the view opens by itself
        await page.locator("#side-fields").get_by_label("Status").select_option("resolved")
        if n < len(subjects) - 1:
            await page.locator("#conv-title", has_text=subjects[n + 1]).wait_for()
        else:
            await page.locator("#workspace-status", has_text="No more conversations").wait_for()
        assert conv_row(hub, cid).status == "resolved"
    assert await not_reloaded(page)
    assert not csp_errors(page), page.console_errors


# --- keyboard shortcuts ------------------------------------------------------------------------------


@SIZES
async def test_keyboard_shortcuts_move_reply_assign_and_resolve_but_never_while_typing(hub, browser, viewport):
    page = await signed_in(browser, hub, viewport)
    await page.wait_for_selector("body[data-live='on']", state="attached")
    keys = page.keyboard
    await keys.press("j")
    await page.locator("#conv-title", has_text="Change of address").wait_for()
    await keys.press("j")
    await page.locator("#conv-title", has_text="Delivery time question").wait_for()
    await keys.press("k")
    await page.locator("#conv-title", has_text="Change of address").wait_for()

    # r and n: the reply and the note; typing a letter there types it, no shortcut fires
    await keys.press("r")
    assert await page.evaluate("document.activeElement.id") == "reply-text"
    await keys.type("jake")
    assert await page.get_by_label("Your reply").input_value() == "jake"
    assert "Change of address" in await page.locator("#conv-title").inner_text()
    await page.locator("#conv-title").click()  # out of the text box
    await keys.press("n")
    assert await page.evaluate("document.activeElement.id") == "note-text"
    await page.locator("#conv-title").click()

    # a modifier held: nothing
    await keys.press("Control+j")
    await keys.press("Alt+e")
    assert "Change of address" in await page.locator("#conv-title").inner_text()

    # a: assigned to me; e: resolved, and the next one opens
    cid = hub.ids[4]
    await keys.press("a")
    await page.locator("#side-notice", has_text="Saved: assignee").wait_for()
    assert conv_row(hub, cid).assignee_id == hub.ada
    await keys.press("e")
    await page.locator("#conv-title", has_text="Delivery time question").wait_for()
    assert conv_row(hub, cid).status == "resolved"

    # s: the snooze control of the open conversation takes the focus (the hook can be replaced)
    await keys.press("s")
    assert await page.evaluate("document.activeElement && document.activeElement.id") == "snooze-preset"
    await page.evaluate("document.activeElement.blur()")
    await page.evaluate("window.workspace.snooze = function (id) { window.__snoozed = id; }")
    await keys.press("s")
    assert await page.evaluate("window.__snoozed") == str(hub.ids[3])

    # ? lists the shortcuts; / and Ctrl+K go to the search box
    await keys.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    await dialog.wait_for()
    assert "Assign to me" in await dialog.inner_text()
    await keys.press("Escape")
    await dialog.wait_for(state="hidden")
    await keys.press("/")
    assert await page.evaluate("document.activeElement.id") == "q"
    await page.locator("#q").fill("")
    await page.locator("#q").type("k/j")  # typed into the search box, not shortcuts
    assert await page.locator("#q").input_value() == "k/j"
    await page.locator("#q").blur()
    await keys.press("Control+k")
    assert await page.evaluate("document.activeElement.id") == "q"
    assert await not_reloaded(page)
    assert not csp_errors(page), page.console_errors


# --- the composer ------------------------------------------------------------------------------------


@SIZES
async def test_the_composer_posts_in_place_and_shows_a_refusal_beside_the_form(hub, browser, viewport):
    page = await signed_in(browser, hub, viewport)
    await open_row(page, "Change of address")
    cid = hub.ids[4]
    reply = page.get_by_label("Your reply")

    # "/" opens the canned responses at the cursor, filtered as one types; Enter inserts; the draft stays
    await reply.fill("Dear Chloé,\n\nBest, Ada")
    await reply.evaluate("el => { el.focus(); el.setSelectionRange(12, 12); }")  # after "Dear Chloé,\n"
    await page.keyboard.type("\n/ship")
    menu = page.get_by_role("listbox", name="Canned responses")
    await menu.wait_for()
    assert await menu.get_by_role("option").all_inner_texts() == ["Shipping times"]
    await page.keyboard.press("Enter")
    await menu.wait_for(state="hidden")
    text = await reply.input_value()
    assert text == "Dear Chloé,\n\nHello Chloé Martin, standard delivery takes 2-4 working days.\nBest, Ada", text

    # a refusal (422: a reply of spaces) shows beside the form and keeps the page
    await reply.evaluate("el => { el.required = false; el.value = '   '; }")
    await page.get_by_role("button", name="Send reply").click()
    await page.locator("#reply-form .form-error", has_text="a reply needs text").wait_for()

    # the reply and a note go in place
    await reply.fill("Your order SO-4711 goes to the new address today.")
    await page.get_by_role("button", name="Send reply").click()
    await page.locator("#timeline .entry.kind-reply", has_text="goes to the new address today").wait_for()
    assert await page.locator("#reply-form .form-error").inner_text() == ""
    await page.get_by_label("Internal note").fill("Checked with the warehouse.")
    await page.get_by_role("button", name="Add note").click()
    await page.locator("#timeline .entry.kind-note", has_text="warehouse").wait_for()
    await page.locator("#side-fields").get_by_label("Priority").select_option("high")
    await page.locator("#side-notice", has_text="Saved: priority high").wait_for()
    assert conv_row(hub, cid).priority == "high"
    assert scalar(hub.engine, "SELECT count(*) FROM message WHERE conversation_id = :c AND direction = 'outbound'", c=cid) == 1

    # the canned-response picker works in place too
    await page.get_by_label("Canned response", exact=True).select_option(label="Refund")
    await page.get_by_role("button", name="Insert", exact=True).click()
    assert "refunded the second charge" in await reply.input_value()
    assert await not_reloaded(page)
    assert not csp_errors(page), page.console_errors


@SIZES
async def test_without_script_the_composer_posts_and_redirects(hub, browser, viewport):
    page = await new_page(browser, viewport, script=False)
    await sign_in(page, hub.base, "ada@example.com", "ada password")
    await page.goto(f"{hub.base}/inbox/c/{hub.ids[4]}")
    await page.get_by_label("Your reply").fill("Sent without script.")
    await page.get_by_role("button", name="Send reply").click()
    await page.locator("#timeline .entry.kind-reply", has_text="without script").wait_for()
    assert re.search(rf"/inbox/c/{hub.ids[4]}#m\d+$", page.url)


@SIZES
async def test_the_reply_goes_to_a_channel_that_can_receive_and_says_to_whom(hub, browser, viewport):
    page = await signed_in(browser, hub, viewport)
    await page.goto(f"{hub.base}/inbox/c/{hub.ids[4]}")
    assert "To: chloe@example.com by email" in await page.locator("#reply-to").inner_text()
    # a web form: the answer goes by email to the address the form gave
    await page.goto(f"{hub.base}/inbox/c/{hub.ids[3]}")
    assert "To: dmitri@example.org by email" in await page.locator("#reply-to").inner_text()
    # a phone call from a customer without an email address: no default to email, a note offered
    await page.goto(f"{hub.base}/inbox/c/{hub.ids[2]}")
    notice = page.locator(".no-channel")
    assert "No reply can reach Paula Caller" in await notice.inner_text() and "note" in await notice.inner_text()
    assert await page.locator("#reply-form").count() == 0
    await page.keyboard.press("r")  # the shortcut goes to the note instead
    assert await page.evaluate("document.activeElement.id") == "note-text"

    # the same caller later writes on Telegram: a reply to the call goes there
    ingest(hub.engine, InboundMessage("telegram", "ws-tg-paula", Sender("99887766", "Paula Caller"), "Any news about the refund?",
                                      thread=ThreadHints(thread_key="99887766"),
                                      verified_identities=(Sender("+44 20 7946 0000", kind="phone"),)))
    await page.goto(f"{hub.base}/inbox/c/{hub.ids[2]}")
    assert "To: 99887766 by telegram" in await page.locator("#reply-to").inner_text()
    await page.get_by_label("Your reply").fill("The refund went out today.")
    await page.get_by_role("button", name="Send reply").click()
    await page.locator("#timeline .entry.kind-reply", has_text="refund went out").wait_for()
    assert scalar(hub.engine, "SELECT channel FROM message WHERE text = 'The refund went out today.'") == "telegram"
    assert not csp_errors(page), page.console_errors


# --- knowledge-base suggestions ---------------------------------------------------------------------


async def test_a_suggestion_goes_in_whole_as_clean_text_and_can_be_marked_not_helpful(hub, browser):
    for n, viewport in enumerate((DESKTOP, PHONE)):
        page = await signed_in(browser, hub, viewport)
        await open_row(page, "Ben Okafor", "Hi! Do you have the blue kettle")  # the row shows the answer he got
        insert = page.locator("#suggestions").get_by_role("button", name="Insert into reply").first
        await insert.wait_for(timeout=240_000)
        await insert.click()
        whole = await page.locator("#suggestions .s-text").first.inner_text()
        text = await page.get_by_label("Your reply").input_value()
        assert text == whole.strip(), (text, whole)
        assert text and "…" not in text and "**" not in text and "## " not in text, text
        assert not re.search(r"^\s*- ", text, re.M), text  # list items as bullets, not Markdown
        cid = hub.ids[1]
        for _ in range(100):
            if scalar(hub.engine, "SELECT count(*) FROM kb_feedback WHERE verdict = 'used' AND conversation_id = :c", c=cid) > n:
                break
            await asyncio.sleep(0.1)
        assert scalar(hub.engine, "SELECT count(*) FROM kb_feedback WHERE verdict = 'used' AND conversation_id = :c", c=cid) >= 1
        unhelpful = page.get_by_role("button", name="Not helpful").last
        await unhelpful.click()
        await page.get_by_role("button", name="Marked not helpful").first.wait_for()
        assert scalar(hub.engine, "SELECT count(*) FROM kb_feedback WHERE verdict = 'not_helpful' AND conversation_id = :c",
                      c=cid) >= 1
        assert await not_reloaded(page)
        assert not csp_errors(page), page.console_errors


# --- times and colours -------------------------------------------------------------------------------


@SIZES
async def test_times_show_in_the_agents_zone_relative_with_the_exact_time_on_hover(hub, browser, viewport):
    page = await signed_in(browser, hub, viewport, timezone_id="Asia/Tokyo", locale="en-GB")
    await page.goto(f"{hub.base}/inbox/c/{hub.ids[0]}")
    stamp = page.locator("#timeline .entry-head time").first
    shown, title = await stamp.inner_text(), await stamp.get_attribute("title")
    assert "hours ago" in shown, shown  # five hours ago
    assert "UTC" not in shown and ("GMT+9" in title or "Japan" in title or "JST" in title), title
    # the time the list shows reads relative too
    if viewport is PHONE:
        await page.get_by_role("link", name="All conversations").click()
    # the list's waiting time keeps its words ("5 h") and gains the exact time in the agent's zone
    row_time = page.locator("#rows td.waiting time").last
    assert re.search(r"\d", await row_time.inner_text()), await row_time.inner_text()
    assert "UTC" not in (await row_time.get_attribute("title") or "UTC"), await row_time.get_attribute("title")


def _luminance(rgb: str) -> float:
    r, g, b = (int(x) / 255 for x in re.findall(r"\d+", rgb)[:3])
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@SIZES
async def test_dark_mode_follows_the_system_setting_with_readable_contrast(hub, browser, viewport):
    for scheme in ("dark", "light"):
        page = await signed_in(browser, hub, viewport, color_scheme=scheme)
        await page.goto(f"{hub.base}/inbox/c/{hub.ids[4]}")
        colours = await page.evaluate("""() => {
            const css = el => getComputedStyle(el);
            const pick = sel => { const el = document.querySelector(sel); return [css(el).color, css(el).backgroundColor]; };
            const page = css(document.documentElement);
            return {page: [page.color, page.backgroundColor], entry: pick('#timeline .entry'),
                    field: pick('#reply-text'), muted: [css(document.querySelector('.muted')).color, page.backgroundColor],
                    status: pick('.meta .status'), chan: pick('.meta .chan')};
        }""")
        background = _luminance(colours["page"][1])
        assert (background < 0.05) if scheme == "dark" else (background > 0.8), colours
        for name, (fg, bg) in colours.items():
            if bg.startswith("rgba(0, 0, 0, 0)"):
                bg = colours["page"][1]
            assert _contrast(fg, bg) >= 4.5, (scheme, name, fg, bg)
        if scheme == "dark" and viewport is DESKTOP:
            await page.screenshot(path=str(SCREENSHOTS / "inbox-workspace-dark.png"))
        assert not csp_errors(page), page.console_errors
