"""Helpers for the inbox's browser tests (headless Chromium through Playwright): the browser
fixture lives in tests/web/conftest.py; pages, sign-in, the API an integration posts to, and
the checks every browser test makes (no Content-Security-Policy violation) live here."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
from pathlib import Path

import aiohttp
from sqlalchemy import text

from tests.conftest import need

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-sync"]
SCREENSHOTS = (Path(__file__).resolve().parents[2] / "docs" / "screenshots" if os.environ.get("SERVICEHUB_SCREENSHOTS")
               else Path(tempfile.gettempdir()) / "servicehub-screenshots")
SCREENSHOTS.mkdir(exist_ok=True)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@contextlib.asynccontextmanager
async def chromium():
    """Debian's headless Chromium, driven by Playwright (tests/web/conftest.py's `browser`)."""
    need(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed (apt-get install chromium)")
    need(importlib.util.find_spec("playwright") is not None, "the playwright package is not installed")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def new_page(browser, viewport=DESKTOP, *, script=True, **context_options):
    context = await browser.new_context(viewport=viewport, java_script_enabled=script, **context_options)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    # A CSP violation (an inline script or style the page needed) shows up as a console error.
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.console_errors = errors
    return page


async def sign_in(page, base, email, password):
    await page.goto(f"{base}/inbox")
    assert "/inbox/login" in page.url  # the inbox needs a session
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("navigation", name="Views").wait_for()


async def post_message(hub, body: dict) -> None:
    """A message arriving through the API, as an integration sends it."""
    async with aiohttp.ClientSession() as session:
        resp = await session.post(f"{hub.base}/api/v1/messages", headers={"Authorization": f"Bearer {hub.integration}"}, json=body)
        assert resp.status == 201, await resp.text()


def kettle_lid(external_id: str) -> dict:
    """A new customer's first message."""
    return {"channel": "api", "external_id": external_id, "sender": {"address": "zoe@example.com", "name": "Zoe Brand"},
            "subject": "Broken kettle lid", "text": "The lid of my kettle broke."}


def csp_errors(page) -> list[str]:
    return [e for e in page.console_errors if "Content Security Policy" in e]


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()
