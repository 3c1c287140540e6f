"""A local stand-in for the Telegram Bot API, on loopback, speaking its shapes.

POST/GET /bot<token>/<method> for getMe, getUpdates (queued updates, honouring offset and a long
poll timeout), setWebhook, deleteWebhook, getWebhookInfo, getFile, sendMessage, sendDocument
(multipart), answerCallbackQuery; GET /file/bot<token>/<file_path> for downloads. Every call is
recorded. Failures can be injected per method (429 with parameters.retry_after, 403 "Forbidden: bot
was blocked by the user", ...), and it refuses what Telegram refuses: getUpdates while a webhook is
set (409), texts over 4,096 UTF-16 code units or empty ones (400), an unknown file_id (400).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from hub.contract import clock

MAX_TEXT_UNITS = 4096
DOWNLOAD_LIMIT = 20 * 1024 * 1024
_INT_PARAMS = {"chat_id", "offset", "limit", "timeout", "message_id", "from_chat_id"}
_JSON_PARAMS = {"reply_parameters", "allowed_updates", "reply_markup", "entities", "link_preview_options"}


@dataclass
class Call:
    token: str
    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Failure:
    method: str
    status: int
    description: str
    parameters: dict | None
    times: int
    after: int
    token: str | None
    chat_id: int | None


@dataclass
class FakeBot:
    token: str
    id: int
    username: str
    first_name: str
    updates: list[dict] = field(default_factory=list)
    webhook: dict | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    next_message_id: int = 1000

    def user(self) -> dict:
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}


class FakeTelegram:
    def __init__(self) -> None:
        self.bots: dict[str, FakeBot] = {}
        self.calls: list[Call] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self._failures: list[_Failure] = []
        self._closing = asyncio.Event()
        self._server: TestServer | None = None
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self.app = app

    # --- set-up -------------------------------------------------------------------------------

    async def start(self) -> str:
        self._server = TestServer(self.app, host="127.0.0.1")
        await self._server.start_server()
        return self.url

    async def close(self) -> None:
        self._closing.set()
        for bot in self.bots.values():
            bot.arrived.set()
        if self._server is not None:
            await self._server.close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    def add_bot(self, token: str, *, id: int, username: str, first_name: str = "Shop Bot") -> FakeBot:
        bot = FakeBot(token=token, id=id, username=username, first_name=first_name)
        self.bots[token] = bot
        return bot

    def queue_update(self, token: str, update: dict) -> None:
        bot = self.bots[token]
        bot.updates.append(update)
        bot.arrived.set()

    def add_file(self, file_id: str, data: bytes, file_path: str | None = None) -> None:
        self.files[file_id] = (data, file_path or f"documents/{file_id}.bin")

    def fail(
        self,
        method: str,
        *,
        status: int,
        description: str,
        retry_after: int | None = None,
        parameters: dict | None = None,
        times: int = 1,
        after: int = 0,
        token: str | None = None,
        chat_id: int | None = None,
    ) -> None:
        """The next `times` calls of method (after letting `after` of them through) fail so."""
        params = dict(parameters or {})
        if retry_after is not None:
            params["retry_after"] = retry_after
        self._failures.append(_Failure(method, status, description, params or None, times, after, token, chat_id))

    def calls_to(self, method: str, token: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and (token is None or c.token == token)]

    # --- the API ----------------------------------------------------------------------------------

    async def _method(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        params, files = await _read_params(request)
        call = Call(token, method, params, files)
        self.calls.append(call)
        bot = self.bots.get(token)
        if bot is None:
            return _fail(401, "Unauthorized")
        failure = self._take_failure(method, token, params)
        if failure is not None:
            return _fail(failure.status, failure.description, failure.parameters)
        handler = getattr(self, f"_m_{method.lower()}", None)
        if handler is None:
            return _fail(404, "Not Found: method not found")
        return await handler(bot, params, files)

    def _take_failure(self, method: str, token: str, params: dict) -> _Failure | None:
        for failure in self._failures:
            if failure.method.lower() != method.lower() or failure.times <= 0:
                continue
            if failure.token is not None and failure.token != token:
                continue
            if failure.chat_id is not None and params.get("chat_id") != failure.chat_id:
                continue
            if failure.after > 0:
                failure.after -= 1
                return None
            failure.times -= 1
            return failure
        return None

    async def _m_getme(self, bot: FakeBot, params, files):
        return _ok(bot.user())

    async def _m_setwebhook(self, bot: FakeBot, params, files):
        if not str(params.get("url", "")).startswith(("http://", "https://")):
            return _fail(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        bot.webhook = params
        return _ok(True)

    async def _m_deletewebhook(self, bot: FakeBot, params, files):
        bot.webhook = None
        if str(params.get("drop_pending_updates")).lower() == "true":
            bot.updates.clear()
        return _ok(True)

    async def _m_getwebhookinfo(self, bot: FakeBot, params, files):
        return _ok({"url": (bot.webhook or {}).get("url", ""), "has_custom_certificate": False,
                    "pending_update_count": len(bot.updates)})

    async def _m_getupdates(self, bot: FakeBot, params, files):
        if bot.webhook is not None:
            return _fail(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")
        offset = params.get("offset")
        if isinstance(offset, int):
            # Telegram forgets what an offset confirms.
            bot.updates = [u for u in bot.updates if u["update_id"] >= offset]
        limit = params.get("limit") if isinstance(params.get("limit"), int) else 100
        timeout = min(float(params.get("timeout") or 0), 5.0)
        if not bot.updates and timeout > 0 and not self._closing.is_set():
            bot.arrived.clear()
            try:
                await asyncio.wait_for(bot.arrived.wait(), timeout)
            except TimeoutError:
                pass
        return _ok(sorted(bot.updates, key=lambda u: u["update_id"])[:limit])

    async def _m_getfile(self, bot: FakeBot, params, files):
        file_id = params.get("file_id")
        if file_id not in self.files:
            return _fail(400, "Bad Request: invalid file_id")
        data, path = self.files[file_id]
        if len(data) > DOWNLOAD_LIMIT:
            return _fail(400, "Bad Request: file is too big")
        return _ok({"file_id": file_id, "file_unique_id": f"u{abs(hash(file_id)) % 10**8}",
                    "file_size": len(data), "file_path": path})

    async def _m_sendmessage(self, bot: FakeBot, params, files):
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            return _fail(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > MAX_TEXT_UNITS:
            return _fail(400, "Bad Request: message is too long")
        return _ok(self._message(bot, params, text=text))

    async def _m_senddocument(self, bot: FakeBot, params, files):
        if "document" not in files:
            return _fail(400, "Bad Request: there is no document in the request")
        name, data = files["document"]
        return _ok(self._message(bot, params, document={
            "file_id": f"doc{len(self.calls)}", "file_unique_id": f"udoc{len(self.calls)}",
            "file_name": name, "file_size": len(data)}))

    async def _m_answercallbackquery(self, bot: FakeBot, params, files):
        return _ok(True)

    def _message(self, bot: FakeBot, params: dict, **content) -> dict:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            raise web.HTTPBadRequest(text=json.dumps({"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}),
                                     content_type="application/json")
        bot.next_message_id += 1
        msg = {
            "message_id": bot.next_message_id,
            "from": bot.user(),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "date": int(clock.timestamp()),
            **content,
        }
        reply = params.get("reply_parameters")
        if isinstance(reply, dict) and reply.get("message_id"):
            msg["reply_to_message"] = {"message_id": reply["message_id"], "chat": msg["chat"], "date": msg["date"]}
        return msg

    async def _download(self, request: web.Request) -> web.Response:
        token, path = request.match_info["token"], request.match_info["path"]
        self.calls.append(Call(token, "download", {"file_path": path}))
        if token not in self.bots:
            return _fail(401, "Unauthorized")
        for data, file_path in self.files.values():
            if file_path == path:
                return web.Response(body=data, content_type="application/octet-stream")
        return _fail(404, "Not Found")


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    raw: dict[str, Any] = dict(request.query)
    files: dict[str, tuple[str, bytes]] = {}
    ctype = request.content_type
    if request.method == "POST":
        if ctype == "application/json":
            body = await request.json()
            raw.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()})
        elif ctype == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if part.filename is not None:
                    files[part.name] = (part.filename, bytes(await part.read()))
                else:
                    raw[part.name] = await part.text()
        else:
            raw.update(dict(await request.post()))
    params: dict[str, Any] = {}
    for key, value in raw.items():
        value = str(value)
        if key in _INT_PARAMS:
            try:
                params[key] = int(value)
                continue
            except ValueError:
                pass
        if key in _JSON_PARAMS:
            try:
                params[key] = json.loads(value)
                continue
            except ValueError:
                pass
        params[key] = value
    return params, files


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _fail(status: int, description: str, parameters: dict | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)
