"""The SMTP (or LMTP) server mail is delivered to: the MX, a relay or a local MTA hands the hub the
mail for the support addresses here.

It accepts RCPT only for the support addresses (and their plus variants, support+c12@...), refuses
anything over max_message_bytes with 552, and says 250 to DATA only once the raw bytes are in the
hub's spool: a 250 is a promise the mail will never be lost, so a spool that fails gets 451 and
the sending server tries again later. Parsing and storing happen afterwards, in the spool worker.

Lines longer than RFC 5322's 998 characters are accepted, up to the size limit: real mail has them
(HTML on one line, long base64 runs), real servers pass them on (Postfix does), and refusing them
with aiosmtpd's default "500 Line too long" bounces a customer's mail for good.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import socket
import weakref
from dataclasses import dataclass

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.base import HubLink

log = logging.getLogger(__name__)

# How long DATA may wait for the spool before the client hears 451 (it retries later).
SPOOL_TIMEOUT_SECONDS = 60.0
_PLUS_TOKEN = re.compile(r"^c(\d{1,12})$", re.I)


def _split(address: str) -> tuple[str, str]:
    local, _, domain = address.strip().strip("<>").rpartition("@")
    return local.lower(), domain.lower().rstrip(".")


@dataclass(frozen=True)
class SupportAddresses:
    """The configured support addresses, matched case-insensitively, plus tags included."""

    addresses: tuple[str, ...]

    def _own(self) -> set[tuple[str, str]]:
        return {_split(a) for a in self.addresses if "@" in a}

    def base(self, address: str) -> tuple[str, str, str] | None:
        """(local, domain, tag) when address is one of ours (tag "" without a plus part)."""
        local, domain = _split(address)
        base, _, tag = local.partition("+")
        if (base, domain) in self._own():
            return base, domain, tag
        return None

    def accepts(self, address: str) -> bool:
        return self.base(address) is not None

    def conversation_token(self, address: str) -> int | None:
        """support+c123@shop.example (the Reply-To the hub sends) -> 123."""
        found = self.base(address)
        if found is None:
            return None
        match = _PLUS_TOKEN.match(found[2])
        return int(match.group(1)) if match else None


def spool_key(raw: bytes) -> str:
    # The same bytes delivered twice (a relay that retried after a lost 250) are spooled once.
    return "smtp:" + hashlib.sha256(raw).hexdigest()


class _Handler:
    """aiosmtpd's handler hooks: RCPT filtering and spool-before-250 on DATA."""

    def __init__(self, hub: HubLink, addresses: SupportAddresses, lmtp: bool):
        self.hub = hub
        self.addresses = addresses
        self.lmtp = lmtp

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]) -> str:
        if not self.addresses.accepts(address):
            shown = address.replace("\r", "").replace("\n", "")[:200]
            return f"550 5.1.1 <{shown}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        payload = {
            "source": "lmtp" if self.lmtp else "smtp",
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "peer": _peer(session.peer),
            "helo": session.host_name,
        }
        try:
            await asyncio.wait_for(self.hub.spool("email", spool_key(raw), payload, raw), SPOOL_TIMEOUT_SECONDS)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the store is down or slow: the sender must keep the mail
            log.exception("spooling mail from %s failed; answering 451", payload["peer"])
            return self._per_recipient(envelope, "451 4.3.0 the mail could not be stored; try again later")
        return self._per_recipient(envelope, "250 2.0.0 OK: queued")

    def _per_recipient(self, envelope: Envelope, status: str) -> str:
        # LMTP answers DATA once per accepted recipient (RFC 2033 4.2).
        if self.lmtp:
            return "\r\n".join([status] * max(1, len(envelope.rcpt_tos)))
        return status


def _peer(peer) -> str | None:
    if isinstance(peer, tuple) and peer:
        return f"{peer[0]}:{peer[1]}" if len(peer) > 1 else str(peer[0])
    return str(peer) if peer else None


class _AnyLineLength:
    """aiosmtpd reads lines with a buffer of line_length_limit bytes (RFC 5321's 1,001 by default)
    and refuses DATA with a longer one; the receiver allows any line the size limit allows."""

    def __init__(self, handler, *, line_length_limit: int, **kwargs):
        self.line_length_limit = line_length_limit  # read by SMTP.__init__ to size its reader
        super().__init__(handler, **kwargs)


class _Smtp(_AnyLineLength, SMTP):
    pass


class _Lmtp(_AnyLineLength, LMTP):
    pass


class SmtpReceiver:
    """An aiosmtpd server in the hub's own event loop (not aiosmtpd's Controller thread), so the
    handler can await the hub's spool directly."""

    def __init__(self, hub: HubLink, addresses: SupportAddresses, *, host: str, port: int,
                 lmtp: bool = False, max_message_bytes: int, hostname: str | None = None,
                 timeout_seconds: float = 300.0):
        self.hub = hub
        self.handler = _Handler(hub, addresses, lmtp)
        self.host = host
        self.port = port
        self.lmtp = lmtp
        self.max_message_bytes = max_message_bytes
        self.hostname = hostname or socket.gethostname()
        self.timeout_seconds = timeout_seconds
        self._server: asyncio.AbstractServer | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def _protocol(self) -> SMTP:
        cls = _Lmtp if self.lmtp else _Smtp
        protocol = cls(
            self.handler,
            # A line a little over the size limit still reads whole, so the client hears 552 (too
            # much mail), not "line too long"; CRLF and a stuffed dot come on top of the line.
            line_length_limit=self.max_message_bytes + 1024,
            data_size_limit=self.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=self.hostname,
            ident="servicehub",
            timeout=self.timeout_seconds,
            loop=asyncio.get_running_loop(),
        )
        self._sessions.add(protocol)
        return protocol

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, host=self.host, port=self.port, reuse_address=True)
        sockets = self._server.sockets or ()
        if sockets:
            self.port = sockets[0].getsockname()[1]  # port 0 in settings: the one the OS picked
        log.info("%s receiver listening on %s:%s", "LMTP" if self.lmtp else "SMTP", self.host, self.port)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        # Sessions still open are cut: a transaction without its 250 is retried by the sender.
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        try:
            await asyncio.wait_for(self._server.wait_closed(), 5)
        except TimeoutError:
            log.warning("SMTP receiver: open sessions did not finish within 5 s")
        self._server = None
