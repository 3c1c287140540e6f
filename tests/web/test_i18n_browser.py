"""The interface's language in a real browser (headless Debian chromium through Playwright), at desktop
and phone sizes: a browser set to Chinese gets the sign-in page in Chinese, the agent's inbox comes in
Chinese after sign-in, the header's switch turns it to English and back, and the choice stays with
the agent whatever the browser says. The public web form follows the visitor's browser."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from hub.auth.accounts import create_agent
from hub.config.settings import Settings
from hub.store.db import make_engine
from hub.web.app import create_app
from tests.support.serverproc import free_port

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(tempfile.gettempdir()) / "servicehub-screenshots"
SCREENSHOTS.mkdir(exist_ok=True)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def hub(tmp_path, sqlite_template):
    db = tmp_path / "servicehub.db"
    shutil.copy(sqlite_template, db)
    port = free_port()
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{db}", public_url=f"http://127.0.0.1:{port}",
                        outbox_poll_seconds=0.05, login_rate_per_minute=1000)
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "ada@example.com", "ada password", role="admin", name="Ada Lovelace")
    server = TestServer(create_app(settings), host="127.0.0.1", port=port)
    await server.start_server()
    server.engine = engine
    server.base = f"http://127.0.0.1:{port}"
    yield server
    await server.close()
    engine.dispose()


async def new_page(browser, viewport, locale):
    context = await browser.new_context(viewport=viewport, locale=locale)  # locale: the Accept-Language it sends
    page = await context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.console_errors = errors
    return page


def stored_language(engine):
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text("SELECT language FROM agent WHERE email = 'ada@example.com'")).scalar()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_an_agent_reads_the_inbox_in_chinese_and_switches_to_english_and_back(hub, browser, viewport):
    page = await new_page(browser, viewport, "zh-CN")
    await page.goto(f"{hub.base}/inbox")
    assert "/inbox/login" in page.url
    await page.get_by_role("heading", name="登录收件箱").wait_for()
    assert await page.locator("html").get_attribute("lang") == "zh-Hans"
    await page.get_by_label("邮箱").fill("ada@example.com")
    await page.get_by_label("密码").fill("ada password")
    await page.get_by_role("button", name="登录").click()

    # The first page after sign-in: Chinese, from the browser, and kept as the agent's choice.
    signout = page.get_by_role("button", name="退出登录")
    await signout.wait_for()
    assert await signout.is_visible()
    nav = page.get_by_role("navigation", name="主导航")
    assert await nav.get_by_role("link", name="收件箱").is_visible()
    assert await nav.get_by_role("link", name="报表").is_visible()
    assert stored_language(hub.engine) == "zh"

    # The header's switch: English, on the same page.
    await page.goto(f"{hub.base}/inbox/reports")
    english = page.get_by_role("button", name="English")
    assert await english.is_visible()
    await english.click()
    await page.get_by_role("button", name="Sign out").wait_for()
    assert page.url.endswith("/inbox/reports")
    assert await page.get_by_role("heading", name="Reports", exact=True).is_visible()
    assert await page.locator("html").get_attribute("lang") == "en"
    assert stored_language(hub.engine) == "en"
    # The agent's choice wins over the browser, which still asks for Chinese.
    await page.goto(f"{hub.base}/inbox/admin/agents")
    await page.get_by_role("heading", name="Agents", exact=True).wait_for()

    # And back to Chinese.
    await page.get_by_role("button", name="简体中文").click()
    await page.get_by_role("button", name="退出登录").wait_for()
    assert await page.get_by_role("heading", name="客服人员").is_visible()
    assert await page.get_by_role("button", name="创建客服").is_visible()
    assert stored_language(hub.engine) == "zh"
    await page.screenshot(path=str(SCREENSHOTS / f"inbox-admin-zh-{viewport['width']}.png"))
    assert not [e for e in page.console_errors if "Content Security Policy" in e]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_the_scripts_speak_the_pages_language(hub, browser, viewport):
    """What the scripts write themselves (the bulk bar's hint, the bell's label, the composer's
    notice) comes from the page's words: Chinese for an agent reading in Chinese."""
    from playwright.async_api import expect

    from hub.contract.messages import InboundMessage, Sender
    from hub.ingest.pipeline import ingest

    stored = ingest(hub.engine, InboundMessage(channel="email", external_id="<zh-js@example.com>", subject="Parcel",
                                               sender=Sender("ana@example.com", "Ana Silva"), text="Where is my parcel?"))
    page = await new_page(browser, viewport, "zh-CN")
    await page.goto(f"{hub.base}/inbox/login")
    await page.get_by_label("邮箱").fill("ada@example.com")
    await page.get_by_label("密码").fill("ada password")
    await page.get_by_role("button", name="登录").click()
    await page.get_by_role("button", name="退出登录").wait_for()

    await page.locator("#bulk-apply").click()  # nothing picked: the script says so
    await expect(page.locator("#bulk-count")).to_have_text("请先至少选择一个会话。")
    await expect(page.locator("[data-notifications]")).to_have_attribute("aria-label", "通知，0 条未读")

    await page.goto(f"{hub.base}/inbox/c/{stored.conversation_id}")
    await page.locator("#note-text").fill("客户来电，稍后回电")
    await page.get_by_role("button", name="添加备注").click()
    await expect(page.locator("#workspace-status")).to_have_text("备注已添加。")
    await page.screenshot(path=str(SCREENSHOTS / f"i18n-scripts-zh-{viewport['width']}.png"))
    assert not [e for e in page.console_errors if "Content Security Policy" in e]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_the_web_form_follows_the_visitors_browser(hub, browser, viewport):
    page = await new_page(browser, viewport, "zh-CN")
    await page.goto(f"{hub.base}/forms/contact")
    send = page.get_by_role("button", name="提交")
    assert await send.is_visible()
    await send.click()
    await page.get_by_role("heading", name="有问题需要处理").wait_for()
    assert await page.locator("html").get_attribute("lang") == "zh-Hans"

    page = await new_page(browser, viewport, "en-GB")
    await page.goto(f"{hub.base}/forms/contact")
    assert await page.get_by_role("button", name="Send").is_visible()
