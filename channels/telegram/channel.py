"""The Telegram channel: one or more bots (one per brand, say), by webhook or long polling.

Receiving is acknowledge-then-process. The webhook route checks the secret token, spools the update
under "bot:update_id" and answers 200 at once; the polling task spools what getUpdates returns and
only then moves its offset on. process() - called by the hub's spool worker, with retries - parses
the update, downloads its files with getFile and hands the message to the hub. Redelivery of an
update is stopped by the spool key, a repeated message by its external id.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import json
import logging
import re
from collections import OrderedDict
from typing import Any

from aiohttp import web
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from channels.base import Delivery, HubLink, PermanentFailure, TemporaryFailure, run_elected
from channels.telegram.bot import (
    ALLOWED_UPDATES,
    BOT_API_DOWNLOAD_LIMIT,
    BadRequest,
    Conflict,
    HubBot,
    InvalidToken,
    RetryAfter,
    TelegramError,
    delivery_failure,
    make_bot,
    retry_after_seconds,
)
from channels.telegram.parse import (
    GROUP_TYPES,
    HANDLED_KINDS,
    MalformedUpdate,
    chat_type,
    parse_update_strict,
)
from channels.telegram.send import MAX_TEXT_UNITS, Route, deliver, split_text, utf16_len
from hub.contract.errors import ConfigError
from hub.contract.messages import Attachment, InboundMessage, OutboundMessage

log = logging.getLogger(__name__)

NAME = "telegram"
DEFAULT_BOT = "default"
WEBHOOK_PATH = "/channels/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_BOT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


# Shown to the customer when they press a satisfaction survey's button.
SURVEY_THANKS = "Thank you for your feedback! 感谢您的评价！"


class TelegramConfigError(ConfigError):
    """The Telegram settings cannot work as they are; the message says what to change."""


def webhook_path(bot: str) -> str:
    return WEBHOOK_PATH if bot == DEFAULT_BOT else f"/channels/telegram/{bot}/webhook"


@dataclasses.dataclass
class BotConfig:
    name: str
    token: str
    mode: str = "webhook"
    webhook_secret: str | None = None
    api_url: str = "https://api.telegram.org"


@dataclasses.dataclass
class _Bot:
    config: BotConfig
    api: HubBot | None = None
    pools: list = dataclasses.field(default_factory=list)
    user_id: int | None = None
    username: str | None = None
    poller: asyncio.Task | None = None

    @property
    def name(self) -> str:
        return self.config.name


def check_config(bots: list[BotConfig]) -> None:
    """Refuse settings that cannot work, at startup, with what to change."""
    names, tokens = set(), set()
    for cfg in bots:
        if not _BOT_NAME.match(cfg.name):
            raise TelegramConfigError(
                f"Telegram bot name {cfg.name!r} must be 1-64 letters, digits, '_' or '-' (it is part of URLs and ids)"
            )
        if cfg.name in names:
            raise TelegramConfigError(f"two Telegram bots are named {cfg.name!r}; names must be unique")
        if cfg.token in tokens:
            raise TelegramConfigError(f"Telegram bot {cfg.name!r} has the same token as another bot")
        names.add(cfg.name)
        tokens.add(cfg.token)
        if cfg.mode == "webhook":
            if not cfg.webhook_secret:
                raise TelegramConfigError(
                    f"Telegram bot {cfg.name!r} is in webhook mode but has no webhook secret, so anyone could post "
                    "updates to it: set SERVICEHUB_TELEGRAM_WEBHOOK_SECRET (webhook_secret in [[telegram_bots]]), "
                    "or use polling mode (SERVICEHUB_TELEGRAM_MODE=polling)"
                )
            if not _SECRET.match(cfg.webhook_secret):
                raise TelegramConfigError(
                    f"the webhook secret of Telegram bot {cfg.name!r} must be 1-256 letters, digits, '_' or '-' (Telegram's rule)"
                )
        elif cfg.mode != "polling":
            raise TelegramConfigError(f"Telegram bot {cfg.name!r}: mode must be 'webhook' or 'polling'")


class TelegramChannel:
    name = NAME

    def __init__(
        self,
        bots: list[BotConfig],
        *,
        public_url: str = "http://127.0.0.1:8080",
        max_attachment_bytes: int = 25 * 1_048_576,
        max_update_bytes: int = 1_048_576,
        poll_timeout: float = 30.0,
        retry_base_seconds: float = 1.0,
        retry_max_seconds: float = 60.0,
        startup_timeout: float = 20.0,
    ):
        if not bots:
            raise TelegramConfigError("the Telegram channel needs at least one bot")
        check_config(bots)
        self.bots: dict[str, _Bot] = {cfg.name: _Bot(cfg) for cfg in bots}
        self.public_url = public_url.rstrip("/")
        self.max_attachment_bytes = max_attachment_bytes
        self.max_update_bytes = max_update_bytes
        self.poll_timeout = poll_timeout
        self.retry_base_seconds = retry_base_seconds
        self.retry_max_seconds = retry_max_seconds
        self.startup_timeout = startup_timeout
        self.hub: HubLink | None = None
        # Which customer message each chat's replies last quoted: only the first reply quotes it.
        self._quoted: OrderedDict[tuple[str, int], int] = OrderedDict()
        # Parts already sent of split messages, by idempotency key (also kept in the hub's state).
        self._progress: OrderedDict[str, dict] = OrderedDict()

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self, hub: HubLink) -> None:
        """Create the PTB bots, learn who they are, set the webhooks or start polling."""
        # Set before the first await: the spool and outbox workers may call in from here on.
        self.hub = hub
        for bot in self.bots.values():
            bot.api, bot.pools = make_bot(bot.config.token, bot.config.api_url, poll_timeout=self.poll_timeout)
        for bot in self.bots.values():
            if bot.config.mode == "polling":
                # One getUpdates loop per bot among all the hub's processes: Telegram answers a
                # second one with 409 Conflict.
                bot.poller = asyncio.create_task(run_elected(hub, f"telegram-poll:{bot.name}", lambda bot=bot: self._poll(bot)),
                                                 name=f"telegram-poll-{bot.name}")
        webhook_bots = [bot for bot in self.bots.values() if bot.config.mode == "webhook"]
        if webhook_bots:
            # Bounded: an unreachable Telegram must not hold up the hub's start.
            setup = asyncio.gather(*(self._set_up_webhook(bot) for bot in webhook_bots))
            try:
                await asyncio.wait_for(setup, timeout=self.startup_timeout)
            except TimeoutError:
                log.error("Telegram: setting up the webhooks took over %.0f s; continuing without", self.startup_timeout)

    async def _set_up_webhook(self, bot: _Bot) -> None:
        await self._identify(bot, quiet=True)
        await self._set_webhook(bot)

    async def stop(self) -> None:
        pollers = [bot.poller for bot in self.bots.values() if bot.poller is not None]
        for task in pollers:
            task.cancel()
        for task in pollers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for bot in self.bots.values():
            bot.poller = None
            for pool in bot.pools:
                with contextlib.suppress(Exception):
                    await pool.shutdown()
            bot.api, bot.pools = None, []

    async def _identify(self, bot: _Bot, *, quiet: bool = False) -> bool:
        """getMe: the bot's id and username tell which group messages are meant for it."""
        if bot.user_id is not None:
            return True
        try:
            me = await self._api(bot).get_me()
        except TelegramError as exc:
            (log.warning if quiet else log.info)("Telegram bot %s: getMe failed: %s", bot.name, exc)
            return False
        bot.user_id, bot.username = me.id, me.username
        return True

    async def _set_webhook(self, bot: _Bot) -> None:
        url = self.public_url + webhook_path(bot.name)
        try:
            await self._api(bot).set_webhook(
                url=url, secret_token=bot.config.webhook_secret, allowed_updates=ALLOWED_UPDATES
            )
            log.info("Telegram bot %s: webhook set to %s", bot.name, url)
        except TelegramError as exc:
            # Telegram may be unreachable right now; the webhook it already has keeps working.
            log.error("Telegram bot %s: setWebhook(%s) failed: %s; continuing", bot.name, url, exc)

    def _api(self, bot: _Bot) -> HubBot:
        # Created at start(); an outbox worker in a process that never starts receiving gets its
        # bot on first use.
        if bot.api is None:
            bot.api, bot.pools = make_bot(bot.config.token, bot.config.api_url, poll_timeout=self.poll_timeout)
        return bot.api

    # --- receiving: webhook ------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        webhook_bots = [b for b in self.bots.values() if b.config.mode == "webhook"]
        defs = []
        if any(b.name == DEFAULT_BOT for b in webhook_bots):
            defs.append(web.post(WEBHOOK_PATH, self._webhook))
        if any(b.name != DEFAULT_BOT for b in webhook_bots):
            defs.append(web.post("/channels/telegram/{bot}/webhook", self._webhook))
        return defs

    async def _webhook(self, request: web.Request) -> web.Response:
        name = request.match_info.get("bot", DEFAULT_BOT)
        bot = self.bots.get(name)
        if bot is None or bot.config.mode != "webhook":
            return _error(404, "not_found", f"no Telegram bot {name!r} receives webhooks here")
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), (bot.config.webhook_secret or "").encode()) or not given:
            return _error(403, "forbidden", f"missing or wrong {SECRET_HEADER}")
        if request.content_length is not None and request.content_length > self.max_update_bytes:
            return _error(413, "payload_too_large", "the update is larger than this hub accepts")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, "payload_too_large", "the update is larger than this hub accepts")
        if len(body) > self.max_update_bytes:
            return _error(413, "payload_too_large", "the update is larger than this hub accepts")
        if self.hub is None:
            return _error(503, "unavailable", "the Telegram channel is starting; retry", headers={"Retry-After": "1"})
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            data, problem = None, "the body is not valid JSON"
        else:
            problem = None
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                problem = "an update is a JSON object with an integer update_id"
        if problem:
            # It came with the right secret, so from Telegram (or whoever holds the secret): keep it
            # among the rejected items for an admin to see.
            key = f"{name}:unreadable:{hashlib.sha256(body).hexdigest()[:32]}"
            await self.hub.reject(NAME, key, problem, {"bot": name}, body)
            return _error(400, "bad_request", problem)
        if not any(kind in data for kind in HANDLED_KINDS):
            # Channel posts, payments, member changes...: Telegram must not redeliver them.
            return web.json_response({"ok": True, "ignored": True})
        # A failure here (the store is down) is a 5xx, and Telegram delivers the update again.
        await self.hub.spool(NAME, f"{name}:{data['update_id']}", {"bot": name, "update": data})
        return web.json_response({"ok": True})

    # --- receiving: long polling --------------------------------------------------------------------

    async def _poll(self, bot: _Bot) -> None:
        """getUpdates in a loop, spooling each batch before saving the offset past it."""
        assert self.hub is not None
        hub, api = self.hub, self._api(bot)
        failures = 0
        webhook_deleted = False
        offset: int | None = None
        state_loaded = False
        while True:
            try:
                await self._identify(bot, quiet=True)
                if not webhook_deleted:
                    # getUpdates is refused while a webhook is set.
                    await api.delete_webhook(drop_pending_updates=False)
                    webhook_deleted = True
                if not state_loaded:
                    state = await hub.load_state(NAME, f"offset:{bot.name}") or {}
                    offset = state.get("offset")
                    state_loaded = True
                updates = await api.get_update_dicts(offset=offset, timeout=self.poll_timeout)
                for update in updates:
                    update_id = update.get("update_id")
                    if not isinstance(update_id, int):
                        continue
                    if any(kind in update for kind in HANDLED_KINDS):
                        await hub.spool(NAME, f"{bot.name}:{update_id}", {"bot": bot.name, "update": update})
                    offset = max(offset or 0, update_id + 1)
                if updates:
                    await hub.save_state(NAME, f"offset:{bot.name}", {"offset": offset})
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a poller must outlive any one failure
                failures += 1
                delay = min(self.retry_max_seconds, self.retry_base_seconds * 2 ** min(failures - 1, 16))
                if isinstance(exc, RetryAfter):
                    delay = max(delay, retry_after_seconds(exc))
                elif isinstance(exc, InvalidToken):
                    delay = self.retry_max_seconds
                if isinstance(exc, Conflict):
                    # Another poller with this token, or a webhook set again meanwhile.
                    log.warning("Telegram bot %s: getUpdates conflict (%s); retrying in %.1f s", bot.name, exc, delay)
                    webhook_deleted = False
                else:
                    log.warning("Telegram bot %s: polling failed (%s: %s); retrying in %.1f s",
                                bot.name, type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)

    # --- processing spooled updates -------------------------------------------------------------

    async def process(self, payload: dict, raw: bytes | None) -> None:
        """Parse one spooled update, fetch its files and store the message."""
        if self.hub is None:
            raise TemporaryFailure("the Telegram channel is not started")
        name, update = payload.get("bot", DEFAULT_BOT), payload.get("update")
        bot = self.bots.get(name)
        if bot is None:
            raise PermanentFailure(f"no Telegram bot named {name!r} is configured any more")
        if chat_type(update) in GROUP_TYPES and not await self._identify(bot):
            raise TemporaryFailure(f"Telegram bot {name}: getMe failed, cannot tell which group messages are its own")
        try:
            message = parse_update_strict(update, bot=name, bot_username=bot.username, bot_id=bot.user_id)
        except MalformedUpdate as exc:
            raise PermanentFailure(f"unreadable Telegram update: {exc}") from None
        if message is None:
            return
        if message.metadata.get("files") and message.kind == "message":
            message = await self._with_files(bot, message)
        await self.hub.ingest(message)
        if message.kind == "callback":
            thanks = SURVEY_THANKS if message.metadata.get("csat") else None
            await self._answer_callback(bot, message.metadata.get("callback_query_id"), thanks)

    async def _with_files(self, bot: _Bot, message: InboundMessage) -> InboundMessage:
        """The message with its files downloaded; a file over the limit is left out and noted."""
        limit = min(self.max_attachment_bytes, BOT_API_DOWNLOAD_LIMIT)
        attachments: list[Attachment] = []
        files = []
        for ref in message.metadata["files"]:
            ref = dict(ref)
            data, skipped = await self._download(bot, ref, limit)
            if data is None:
                ref["skipped"] = skipped
            else:
                ref["stored"] = True
                attachments.append(
                    Attachment(filename=ref["file_name"], content_type=ref["mime_type"], data=data, size=len(data))
                )
            files.append(ref)
        metadata = dict(message.metadata, files=files)
        return dataclasses.replace(message, attachments=message.attachments + tuple(attachments), metadata=metadata)

    async def _download(self, bot: _Bot, ref: dict, limit: int) -> tuple[bytes | None, str | None]:
        too_large = f"larger than {limit} bytes, not downloaded (see it in the Telegram chat)"
        if ref.get("file_size") and ref["file_size"] > limit:
            return None, too_large
        if not ref.get("file_id"):
            return None, "no file_id"
        api = self._api(bot)
        try:
            file = await api.get_file(ref["file_id"])
            if file.file_size and file.file_size > limit:
                return None, too_large
            data = bytes(await file.download_as_bytearray())
        except BadRequest as exc:
            # "file is too big", "wrong file_id or the file is temporarily unavailable"
            return None, f"Telegram: {exc.message}"
        except TelegramError as exc:
            raise delivery_failure(exc, "getFile") from exc
        if len(data) > limit:
            return None, too_large
        return data, None

    async def _answer_callback(self, bot: _Bot, query_id: Any, text: str | None = None) -> None:
        """Stop the button's spinner in the customer's client (showing `text`, if any, as a short
        notice); a late or failed answer harms nothing."""
        if not query_id:
            return
        try:
            await self._api(bot).answer_callback_query(str(query_id), text=text)
        except (TelegramError, TemporaryFailure) as exc:
            log.debug("Telegram bot %s: answerCallbackQuery failed: %s", bot.name, exc)

    # --- sending -----------------------------------------------------------------------------

    def route(self, message: OutboundMessage) -> Route:
        """Which bot and chat a message goes to: the conversation's thread key "bot:chat_id"; a
        conversation without one (or with a bare chat id) goes through the default bot."""
        key = message.thread_key or ""
        name, sep, chat = key.rpartition(":")
        if sep and name:
            if name not in self.bots:
                raise PermanentFailure(f"the conversation belongs to Telegram bot {name!r}, which is not configured")
        else:
            name = DEFAULT_BOT if DEFAULT_BOT in self.bots else next(iter(self.bots))
            chat = key or message.recipient
        try:
            return Route(name, int(chat))
        except ValueError:
            raise PermanentFailure(f"no Telegram chat to send to (thread {key!r}, recipient {message.recipient!r})") from None

    async def send(self, message: OutboundMessage) -> Delivery:
        """sendMessage (split when long) and sendDocument for attachments.

        A retry with the same idempotency key skips the parts sent before, so a failure part-way
        never doubles a part. A crash between Telegram accepting a part and the hub recording it
        can still send that one part twice: the Bot API has no idempotency key of its own."""
        route = self.route(message)
        bot = self.bots[route.bot]
        api = self._api(bot)
        if message.buttons:
            return await self._send_with_buttons(api, route, message)
        quote = self._quote_for(route, message.reply_to)
        steps = len(split_text(message.text or "")) + len(message.attachments)
        # Only a message sent in several steps can fail part-way; a single one needs no look-up.
        progress = await self._load_progress(message.idempotency_key) if steps > 1 else {}

        async def save_progress(value: dict) -> None:
            self._remember(self._progress, message.idempotency_key, value, 1000)
            if self.hub is not None:
                await self.hub.save_state(NAME, f"sent:{message.idempotency_key}", value)

        chat_id, last_id = await deliver(api, route, message, quote=quote, progress=progress, save_progress=save_progress)
        self._progress.pop(message.idempotency_key, None)
        if quote is not None:
            self._remember(self._quoted, (route.bot, route.chat_id), quote, 10_000)
        return Delivery(external_id=f"{route.bot}:{chat_id}:{last_id}")

    async def _send_with_buttons(self, api: HubBot, route: Route, message: OutboundMessage) -> Delivery:
        """One message with an inline keyboard (a survey's 1..5 in a row): the buttons belong to
        one message, so the text is never split (a button message is short by design)."""
        text = (message.text or "").strip()
        if not text or utf16_len(text) > MAX_TEXT_UNITS:
            raise PermanentFailure("a message with buttons needs a text of 1 to 4096 characters")
        if len(message.buttons) > 8 or any(len(data.encode()) > 64 for _, data in message.buttons):
            raise PermanentFailure("Telegram allows 8 buttons in a row with at most 64 bytes of callback data each")
        markup = InlineKeyboardMarkup(
            [[InlineKeyboardButton(label, callback_data=data) for label, data in message.buttons]]
        )
        try:
            sent = await api.send_message(chat_id=route.chat_id, text=text, reply_markup=markup)
        except TelegramError as exc:
            raise delivery_failure(exc, "sendMessage") from exc
        return Delivery(external_id=f"{route.bot}:{sent.chat_id}:{sent.message_id}")

    def _quote_for(self, route: Route, reply_to: tuple[str, ...]) -> int | None:
        """The customer message to quote: the newest one this chat sent, unless an earlier reply
        already quoted it (a second answer to the same message needs no quote)."""
        if not reply_to:
            return None
        name, _, rest = reply_to[0].partition(":")
        chat, _, message_id = rest.partition(":")
        if name != route.bot or chat != str(route.chat_id) or not message_id.isdigit():
            return None
        if self._quoted.get((route.bot, route.chat_id)) == int(message_id):
            return None
        return int(message_id)

    async def _load_progress(self, key: str) -> dict:
        if key in self._progress:
            return self._progress[key]
        if self.hub is None:
            return {}
        try:
            state = await self.hub.load_state(NAME, f"sent:{key}")
        except Exception:  # noqa: BLE001 - without it we may resend a part, not lose the message
            log.exception("loading the send progress of %s failed", key)
            state = None
        return state or {}

    @staticmethod
    def _remember(store: OrderedDict, key, value, size: int) -> None:
        store[key] = value
        store.move_to_end(key)
        while len(store) > size:
            store.popitem(last=False)


def _error(status: int, code: str, message: str, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)
