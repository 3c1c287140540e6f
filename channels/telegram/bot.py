"""python-telegram-bot glue: one PTB Bot per configured bot, used inside the hub's event loop.

No telegram.ext Application and no run_polling(): the hub owns the loop. Webhook updates arrive on
the hub's own aiohttp route, polling is an asyncio task of the channel calling getUpdates, and
every other call (getMe, setWebhook, getFile, sendMessage...) is a PTB Bot method.
"""

from __future__ import annotations

import logging
import warnings
from datetime import timedelta
from typing import Any

from telegram import Bot
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from channels.base import DeliveryFailed, PermanentFailure, TemporaryFailure

log = logging.getLogger(__name__)

# The update kinds asked for with getUpdates and setWebhook: Telegram does not send the others.
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
# getFile serves files up to this size; larger ones can only be seen in the Telegram client.
BOT_API_DOWNLOAD_LIMIT = 20 * 1024 * 1024


class HubBot(Bot):
    """A PTB Bot that can also fetch updates as the JSON Telegram sent.

    Bot.get_updates turns updates into PTB objects, and PTB's constructors insist on every field
    the current Bot API requires: one update of an older or newer shape would fail the whole batch
    and stall polling. The hub spools the JSON itself (as the webhook does), so it asks for that.
    """

    async def get_update_dicts(self, *, offset: int | None, timeout: float, limit: int = 100) -> list[dict]:
        data: dict[str, Any] = {"timeout": int(timeout), "limit": limit, "allowed_updates": ALLOWED_UPDATES}
        if offset is not None:
            data["offset"] = offset
        # Bot.get_updates does the same call, then de_json; the long poll needs a longer read timeout.
        result = await self._post("getUpdates", data, read_timeout=timeout + 10.0)
        return [u for u in result if isinstance(u, dict)] if isinstance(result, list) else []


def make_bot(token: str, api_url: str, *, poll_timeout: float = 30.0) -> tuple[HubBot, list[HTTPXRequest]]:
    """The bot and its two connection pools (the long poll has its own), which the caller shuts
    down: Bot.shutdown() only closes what Bot.initialize() opened, and initialize() would put the
    token into the error message of a refused getMe."""
    api_url = api_url.rstrip("/")
    requests = [
        HTTPXRequest(connection_pool_size=8, read_timeout=30.0, write_timeout=30.0, connect_timeout=10.0),
        HTTPXRequest(connection_pool_size=1, read_timeout=poll_timeout + 10.0, connect_timeout=10.0),
    ]
    bot = HubBot(
        token,
        base_url=f"{api_url}/bot",
        base_file_url=f"{api_url}/file/bot",
        request=requests[0],
        get_updates_request=requests[1],
    )
    return bot, requests


def retry_after_seconds(exc: RetryAfter) -> float:
    """PTB 22 moves retry_after from int to timedelta (and warns about the move): take either."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def delivery_failure(exc: TelegramError, what: str) -> DeliveryFailed:
    """A Bot API error as the outbox and spool understand it: retry later, or give up with a reason."""
    if isinstance(exc, RetryAfter):
        seconds = retry_after_seconds(exc)
        return TemporaryFailure(f"{what}: Telegram asks to wait {seconds:g} s (flood control)", retry_after=seconds)
    if isinstance(exc, Forbidden):
        # "Forbidden: bot was blocked by the user", "... user is deactivated", "... kicked from the group"
        return PermanentFailure(f"{what}: {exc.message}")
    if isinstance(exc, (InvalidToken, EndPointNotFound)):
        # The bot's configuration is wrong, not the message: keep it until an operator fixes that.
        return TemporaryFailure(f"{what}: Telegram refused the bot token ({exc.message}); check the configuration")
    if isinstance(exc, BadRequest):  # before NetworkError: PTB makes BadRequest one of those
        return PermanentFailure(f"{what}: {exc.message}")
    if isinstance(exc, (TimedOut, NetworkError, Conflict)):
        return TemporaryFailure(f"{what}: {exc.message}")
    if isinstance(exc, ChatMigrated):
        return TemporaryFailure(f"{what}: the chat moved to {exc.new_chat_id}")
    return TemporaryFailure(f"{what}: {type(exc).__name__}: {exc.message}")


__all__ = [
    "ALLOWED_UPDATES",
    "BOT_API_DOWNLOAD_LIMIT",
    "BadRequest",
    "ChatMigrated",
    "Conflict",
    "Forbidden",
    "HubBot",
    "InvalidToken",
    "NetworkError",
    "RetryAfter",
    "TelegramError",
    "TimedOut",
    "delivery_failure",
    "make_bot",
    "retry_after_seconds",
]
