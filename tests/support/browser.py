"""Headless Chromium (Debian's /usr/bin/chromium) through Playwright for the inbox's browser tests:
the browser, a page at a viewport that records console errors (a CSP violation shows as one), and
signing in through the sign-in form."""

from __future__ import annotations

import contextlib
import importlib.util
import os

from tests.conftest import need

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@contextlib.asynccontextmanager
async def chromium():
    """The browser, for a test module's own `browser` fixture."""
    need(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed (apt-get install chromium)")
    need(importlib.util.find_spec("playwright") is not None, "the playwright package is not installed")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def new_page(browser, viewport=DESKTOP, *, script=True):
    """A page in a fresh context; page.console_errors collects the console's errors."""
    context = await browser.new_context(viewport=viewport, java_script_enabled=script)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.console_errors = errors
    return page


async def sign_in(page, base: str, email: str, password: str) -> None:
    await page.goto(f"{base}/inbox")
    assert "/inbox/login" in page.url  # the inbox needs a session
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("navigation", name="Views").wait_for()


def csp_errors(page) -> list[str]:
    return [e for e in page.console_errors if "Content Security Policy" in e]
