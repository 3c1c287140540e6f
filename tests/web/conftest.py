"""Fixtures shared by the inbox's browser tests."""

from __future__ import annotations

import pytest

from tests.support.browser import chromium


@pytest.fixture
async def browser():
    """Debian's headless Chromium, driven by Playwright."""
    async with chromium() as launched:
        yield launched
