"""Fixtures of the Telegram channel's tests: the fake Bot API (`fake`) and `start_hub`, which starts the real app
against it (tests/support/telegram.py)."""

from __future__ import annotations

import pytest

from tests.support.telegram import fake_telegram, hub_starter


@pytest.fixture
async def fake():
    async with fake_telegram() as server:
        yield server


@pytest.fixture
async def start_hub(settings, fake):
    async with hub_starter(settings, fake) as start:
        yield start
