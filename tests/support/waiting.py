"""Waiting for something that happens in another task, thread or process: poll, with a deadline
and a message naming what never came."""

from __future__ import annotations

import asyncio
import time


async def wait_until(predicate, *, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    """Poll a (sync or async) predicate until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


async def eventually(check, *, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)

