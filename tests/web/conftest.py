"""Fixtures shared by the inbox's browser tests."""

from __future__ import annotations

import importlib.util
import os

import pytest

from tests.conftest import need
from tests.support.browser import CHROMIUM, LAUNCH_ARGS


@pytest.fixture
async def browser():
    """Debian's headless Chromium, driven by Playwright."""
    need(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed (apt-get install chromium)")
    need(importlib.util.find_spec("playwright") is not None, "the playwright package is not installed")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()
