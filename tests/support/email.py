"""The email channel's test kit: mail as a customer's client builds it, sending it to the hub's
SMTP receiver, the hub served on loopback with its channels running, a HubLink that records, the
customer's mail server (aiosmtpd collecting envelopes), and a Dovecot account for the IMAP poller.

The fixtures (a Dovecot server, a trusted certificate, quick IMAP reconnects) are in
tests/channels/email/conftest.py."""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.smtp import SMTP, AuthResult

from channels.email import EmailChannel
from hub.auth.accounts import create_agent
from hub.config.settings import EmailSettings, ImapAccountSettings
from hub.contract.errors import Conflict
from hub.conversations.listing import ConversationFilter, list_conversations
from hub.conversations.queries import get_conversation
from hub.store.db import make_engine
from hub.web.app import create_app
from hub.web.keys import REGISTRY
from tests.support.dovecot import Dovecot
from tests.support.waiting import wait_until

SUPPORT = "support@shop.example"


def mail(
    *,
    sender: str = "Ana Lima <ana@example.com>",
    to: str = SUPPORT,
    subject: str = "Where is my order 1234?",
    text: str = "Hello, my order 1234 has not arrived yet.\n\nAna\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    size: int | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = message_id or make_msgid(domain="example.com")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    if size:
        text = text + ("padding line of an oversized message\n" * (size // 37 + 1))
    msg.set_content(text)
    return msg.as_bytes(policy=email.policy.SMTP)


def with_email(settings, **email) -> object:
    email.setdefault("addresses", [SUPPORT])
    email.setdefault("from_name", "Shop Support")
    return settings.model_copy(update={"email": EmailSettings(**email)})


@dataclass
class RunningHub:
    app: object
    client: TestClient
    engine: object
    _headers: dict

    @property
    def channel(self) -> EmailChannel:
        return self.app[REGISTRY].get("email")

    @property
    def smtp_port(self) -> int:
        return self.channel.receiver.port

    async def headers(self, role: str = "agent") -> dict:
        """Bearer headers of an agent or admin, created and logged in on first use (password
        hashing is slow enough to leave out of tests that never call the API)."""
        if role not in self._headers:
            email, password = f"{role}@shop.example", f"{role} password"
            with contextlib.suppress(Conflict):  # a hub started again on the same store
                await asyncio.to_thread(create_agent, self.engine, email, password, role=role)
            resp = await self.client.post("/api/v1/auth/login", json={"email": email, "password": password})
            assert resp.status == 200, await resp.text()
            self._headers[role] = {"Authorization": f"Bearer {(await resp.json())['token']}"}
            self.client.session.cookie_jar.clear()
        return self._headers[role]

    def conversations(self) -> list[dict]:
        return list_conversations(self.engine, ConversationFilter(limit=200))["items"]

    def conversation(self, conversation_id: int) -> dict:
        return get_conversation(self.engine, conversation_id)

    def conversations_of(self, address: str) -> list[dict]:
        out = []
        for item in self.conversations():
            conv = self.conversation(item["id"])
            if any((m["sender"] or {}).get("address") == address for m in conv["messages"]):
                out.append(conv)
        return out

    def inbound_ids(self) -> list[str]:
        ids = []
        for item in self.conversations():
            ids += [m["external_id"] for m in self.conversation(item["id"])["messages"] if m["direction"] == "inbound"]
        return ids


@contextlib.asynccontextmanager
async def running_hub(settings, *, registry=None):
    """create_app(settings) served on loopback with its workers and channels running (registry:
    the channels, when not those the settings configure)."""
    app = create_app(settings, registry=registry)
    engine = make_engine(settings.effective_database_url)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield RunningHub(app, client, engine, {})
    finally:
        await asyncio.wait_for(client.close(), 30)
        engine.dispose()


async def smtp_send(port: int, raw: bytes, *, sender: str = "ana@example.com", recipients=(SUPPORT,)):
    return await aiosmtplib.send(raw, sender=sender, recipients=list(recipients), hostname="127.0.0.1", port=port,
                                 timeout=10, start_tls=False)


class FakeHub:
    """A HubLink that records what the channel hands it."""

    def __init__(self, *, spool_error: Exception | None = None):
        self.spooled: list[tuple[str, str, dict, bytes | None]] = []
        self.ingested: list = []
        self.rejected: list = []
        self.state: dict = {}
        self.spool_error = spool_error

    async def ingest(self, message):
        self.ingested.append(message)
        return message

    async def spool(self, channel, key, payload, raw=None):
        if self.spool_error is not None:
            raise self.spool_error
        new = all(k != key for _, k, _, _ in self.spooled)
        if new:
            self.spooled.append((channel, key, payload, raw))
        return new

    async def reject(self, channel, key, reason, payload, raw=None):
        self.rejected.append((channel, key, reason, payload, raw))

    async def run_parser(self, fn, /, *args, **kwargs):
        return fn(*args, **kwargs)

    async def load_state(self, channel, name):
        return self.state.get((channel, name))

    async def save_state(self, channel, name, value):
        self.state[(channel, name)] = value


# --- the customer's mail server ---------------------------------------------------------------


@dataclass
class Envelope:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)


@dataclass
class CustomerMx:
    """The customer's mail server: collects what it accepts; answers can be scripted."""

    received: list[Envelope] = field(default_factory=list)
    rcpt_answers: list[str] = field(default_factory=list)
    data_answers: list[str] = field(default_factory=list)
    port: int = 0
    attempts: int = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_answers:
            return self.rcpt_answers.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.attempts += 1
        if self.data_answers:
            return self.data_answers.pop(0)
        self.received.append(Envelope(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK: queued as 1234"


@contextlib.asynccontextmanager
async def customer_mx(*, tls: ssl.SSLContext | None = None, implicit_tls: bool = False, logins: dict | None = None):
    mx = CustomerMx()
    loop = asyncio.get_running_loop()
    kwargs = {}
    if logins is not None:
        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = logins.get(auth_data.login.decode()) == auth_data.password.decode()
            return AuthResult(success=ok, handled=False)

        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=bool(tls and not implicit_tls))
    server = await loop.create_server(
        lambda: SMTP(mx, hostname="mx.customer.example", loop=loop,
                     tls_context=None if implicit_tls else tls, require_starttls=bool(tls and not implicit_tls), **kwargs),
        "127.0.0.1", 0, ssl=tls if implicit_tls else None,
    )
    mx.port = server.sockets[0].getsockname()[1]
    try:
        yield mx
    finally:
        server.close()


async def reply_and_receive(hub, mx, conversation: dict, text: str):
    """The agent answers through the API; the mail as the customer's server received it."""
    before = len(mx.received)
    resp = await hub.client.post(f"/api/v1/conversations/{conversation['id']}/replies", json={"text": text},
                                 headers=await hub.headers())
    assert resp.status == 201, await resp.text()
    await wait_until(lambda: len(mx.received) > before, what="the reply at the customer's mail server")
    return mx.received[-1]


# --- IMAP -----------------------------------------------------------------------------------------


def account(server: Dovecot, **overrides) -> ImapAccountSettings:
    values = dict(name="support", host=server.host, port=server.port, security="none", username=server.username,
                  password=server.password, poll_seconds=30.0, idle=True)
    values.update(overrides)
    return ImapAccountSettings(**values)

