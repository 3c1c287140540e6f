"""Mailboxes the hub reads by IMAP (aioimaplib), one task per account.

Progress is (UIDVALIDITY, last UID), saved with the hub only after everything it covers is in the
spool; flags are never read or set (EXAMINE opens the mailbox read-only, bodies are fetched with
BODY.PEEK), so a person reading the same mailbox in their client changes nothing for the hub.

On start the poller backfills everything after the saved UID (all of the mailbox the first time),
then waits with IDLE where the server has it, else polls every poll_seconds; IDLE is re-issued
every poll_seconds too, which also notices a connection that died silently.

No server answer is ever large, whatever the size of the mailbox or of the backlog: the first new
message is found by its sequence number (a few FETCH n (UID) probes, galloping down from the
newest, then halving), the new ones are listed LIST_WINDOW sequence numbers at a time, and their
bodies fetched BATCH_MESSAGES (or BATCH_BYTES) at a time. Sequence numbers shift when another
client expunges: the poller notices the server's EXPUNGE and lists again from the saved UID.

A dropped connection or a restarted server is retried with backoff from the saved state: mail
spooled twice is deduplicated by the spool key and by the hub (Message-ID), and nothing past the
saved UID is skipped. A message over max_message_bytes is not downloaded but recorded as rejected
with its reason; one the server cannot deliver is rejected alike; neither stops the messages after it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import ssl
from dataclasses import dataclass

import aioimaplib
from aioimaplib.aioimaplib import Command

from channels.base import HubLink, run_elected

log = logging.getLogger(__name__)

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]", re.I)
_FETCH_START = re.compile(rb"^(\d+) FETCH \(", re.I)
_UID = re.compile(rb"\bUID (\d+)", re.I)
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)", re.I)
_LITERAL = re.compile(rb"\{(\d+)\}$")
_EXISTS = re.compile(rb"^(?:\* )?(\d+) EXISTS\b", re.I)
_EXPUNGE = re.compile(rb"^(?:\* )?\d+ EXPUNGE\b", re.I)

# Fetch bodies in batches this large (count, bytes): few round trips, bounded memory.
BATCH_MESSAGES = 50
BATCH_BYTES = 20 * 1_048_576
# List the new messages (UID, size) this many at a time: one line each in the answer.
LIST_WINDOW = 200
# aioimaplib (2.0.3, the latest release) handles each line of what one read from the socket
# returned one recursion level deeper (_handle_responses calls itself for the rest of the data),
# so a read holding a thousand lines raises RecursionError and kills the session. Our own commands
# never ask for that many lines, but the server may send them unasked (a person expunging
# thousands of messages): reads are handed to aioimaplib in pieces of at most this many lines,
# as the network itself could have cut them.
PIECE_LINES = 100
# The headers kept with a rejected oversized message, so an admin can tell what it was.
SUMMARY_FIELDS = "FROM TO SUBJECT DATE MESSAGE-ID"
# RFC 2177: a client should re-issue IDLE at least every 29 minutes.
MAX_IDLE_SECONDS = 25 * 60


class ImapFailure(Exception):
    """The server refused a command or the session broke: reconnect and resume from the state."""


@dataclass
class _Fetched:
    uid: int
    size: int | None = None
    literal: bytes | None = None
    seq: int = 0


def parse_fetch(lines: list) -> list[_Fetched]:
    """aioimaplib's FETCH response lines -> one item per message with a UID. Literal data comes as
    bytearray lines, everything else as bytes; unsolicited FETCHes without UID are dropped."""
    items: list[_Fetched] = []
    current: _Fetched | None = None
    text = b""

    def close():
        nonlocal current, text
        if current is not None:
            uid = _UID.search(text)
            size = _SIZE.search(text)
            if uid:
                current.uid = int(uid.group(1))
                current.size = int(size.group(1)) if size else None
                items.append(current)
        current, text = None, b""

    for line in lines:
        if isinstance(line, bytearray):
            if current is not None and current.literal is None:
                current.literal = bytes(line)
            continue
        if not isinstance(line, bytes):
            continue
        start = _FETCH_START.match(line)
        if start:
            close()
            current = _Fetched(uid=0, seq=int(start.group(1)))
            text = _LITERAL.sub(b"", line)
        elif current is not None:
            text += b" " + _LITERAL.sub(b"", line)
    close()
    return items


def in_pieces(data: bytes, lines: int = PIECE_LINES):
    """data cut after every `lines`-th line end (the whole of it when it has fewer)."""
    if data.count(b"\n") <= lines:
        yield data
        return
    start = 0
    while start < len(data):
        end = start
        for _ in range(lines):
            found = data.find(b"\n", end)
            if found < 0:
                end = len(data)
                break
            end = found + 1
        yield data[start:end]
        start = end


class ImapPoller:
    """One account: connect, backfill, wait for news, repeat; reconnect with backoff on failure."""

    channel = "email"
    backoff_first = 1.0
    backoff_max = 120.0
    command_timeout = 60.0

    def __init__(self, account, hub: HubLink, *, max_message_bytes: int):
        self.account = account
        self.hub = hub
        self.max_message_bytes = max_message_bytes
        self.state_name = f"imap:{account.name}"
        self._task: asyncio.Task | None = None
        self._client: aioimaplib.IMAP4 | None = None
        self._lost: asyncio.Event | None = None
        self._news = False  # the server announced mail (EXISTS) since the last listing
        self._exists = 0  # messages in the mailbox, as the server last said
        self._expunged = False  # the server reported an EXPUNGE: sequence numbers moved
        self.connected = asyncio.Event()  # set while a session is up (tests wait on it)
        self.sessions = 0

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        # One poller per mailbox among all the hub's processes (IMAP sessions of two pollers
        # would race on the resume state and on flags).
        self._task = asyncio.create_task(run_elected(self.hub, self.state_name, self.run), name=f"imap-{self.account.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._drop()

    async def run(self) -> None:
        delay = self.backoff_first
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever broke, the account keeps being read
                if self.connected.is_set() and loop.time() - began > self.backoff_max:
                    delay = self.backoff_first  # it worked for a good while: a fresh failure, retry soon
                log.warning("IMAP %s (%s:%s): %s: %s; reconnecting in %.1f s", self.account.name, self.account.host,
                            self.account.port, type(exc).__name__, exc, delay)
            finally:
                self.connected.clear()
                self._drop()
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(self.backoff_max, delay * 2)

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.protocol is not None and client.protocol.transport is not None:
            client.protocol.transport.close()

    # --- one session -------------------------------------------------------------------------

    async def _session(self) -> None:
        client = await self._connect()
        caps = client.protocol.capabilities
        uidvalidity = await self._examine(client)
        self.sessions += 1
        self.connected.set()
        log.info("IMAP %s: connected, UIDVALIDITY %s", self.account.name, uidvalidity)
        idle = self.account.idle and "IDLE" in caps
        while True:
            self._news = False
            await self._fetch_new(client, uidvalidity)
            if self._news:
                continue  # mail came while fetching: list again before waiting
            if idle:
                await self._idle(client)
            else:
                await self._wait(self._poll_seconds())
                await self._call(client.noop())  # some servers report new mail only on a command

    def _poll_seconds(self) -> float:
        return max(0.05, float(self.account.poll_seconds))

    async def _connect(self) -> aioimaplib.IMAP4:
        account = self.account
        lost = asyncio.Event()
        self._lost = lost
        context = ssl.create_default_context() if account.security in ("ssl", "starttls") else None
        client = aioimaplib.IMAP4(
            host=account.host,
            port=account.port,
            timeout=self.command_timeout,
            conn_lost_cb=lambda exc: lost.set(),
            ssl_context=context if account.security == "ssl" else None,
        )
        self._client = client
        self._watch_exists(client)
        self._feed_in_pieces(client)
        await self._call(client.wait_hello_from_server())
        if account.security == "starttls":
            await self._starttls(client, context)
        response = await self._call(client.login(account.username, account.password))
        if response.result != "OK":
            raise ImapFailure(f"login as {account.username} refused: {_text(response)}")
        # Servers may announce more (IDLE among it) once logged in.
        await self._call(client.protocol.capability())
        return client

    def _watch_exists(self, client: aioimaplib.IMAP4) -> None:
        """Note every EXISTS and EXPUNGE the server sends. aioimaplib drops those that arrive with
        another command's answer (a message delivered during a FETCH), and the server will not
        repeat them once IDLE starts: without this, such a message would wait for the next renewal."""
        protocol = client.protocol
        untagged = protocol._untagged_response

        def spy(line: bytes):
            exists = _EXISTS.match(line)
            if exists:
                self._news = True
                self._exists = int(exists.group(1))
            elif _EXPUNGE.match(line):
                self._expunged = True
                self._exists = max(0, self._exists - 1)
            return untagged(line)

        protocol._untagged_response = spy

    @staticmethod
    def _feed_in_pieces(client: aioimaplib.IMAP4) -> None:
        """See PIECE_LINES. Cutting where TCP could have cut changes nothing else: aioimaplib
        carries a partial line or literal over to the next read."""
        protocol = client.protocol
        received = protocol.data_received

        def data_received(data: bytes) -> None:
            for piece in in_pieces(data):
                received(piece)

        protocol.data_received = data_received

    async def _starttls(self, client: aioimaplib.IMAP4, context: ssl.SSLContext) -> None:
        protocol = client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise ImapFailure("the server does not offer STARTTLS, which the settings require")
        response = await self._call(protocol.execute(Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)))
        if response.result != "OK":
            raise ImapFailure(f"STARTTLS refused: {_text(response)}")
        loop = asyncio.get_running_loop()
        protocol.transport = await asyncio.wait_for(
            loop.start_tls(protocol.transport, protocol, context, server_hostname=self.account.host),
            self.command_timeout,
        )
        await self._call(protocol.capability())  # RFC 3501 6.2.1: forget what was said in clear

    async def _examine(self, client: aioimaplib.IMAP4) -> int:
        self._exists = 0
        response = await self._call(client.examine(_quote(self.account.mailbox)))
        if response.result != "OK":
            raise ImapFailure(f"mailbox {self.account.mailbox!r} cannot be opened: {_text(response)}")
        # aioimaplib tracks SELECT only; EXAMINE selects the mailbox read-only.
        client.protocol.state = aioimaplib.SELECTED
        for line in response.lines:
            exists = _EXISTS.match(line) if isinstance(line, bytes) else None
            if exists:
                self._exists = int(exists.group(1))
        for line in response.lines:
            if isinstance(line, bytes):
                found = _UIDVALIDITY.search(line)
                if found:
                    return int(found.group(1))
        raise ImapFailure("the server sent no UIDVALIDITY for the mailbox")

    async def _call(self, coro, *, timeout: float | None = -1.0):
        """A command that gives up when the connection drops or the deadline passes: aioimaplib
        leaves a command waiting forever on a dead line. timeout None: no overall deadline (a
        large body may take long; aioimaplib's own inactivity timeout still applies)."""
        if timeout is not None and timeout < 0:
            timeout = self.command_timeout
        task = asyncio.ensure_future(coro)
        waiters = {task}
        lost = None
        if self._lost is not None:
            lost = asyncio.ensure_future(self._lost.wait())
            waiters.add(lost)
        try:
            done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if lost is not None:
                lost.cancel()
        if task in done:
            return task.result()
        task.cancel()
        if lost is not None and lost in done:
            raise ImapFailure("the connection was lost")
        raise ImapFailure(f"the server did not answer within {timeout:.0f} s")

    # --- fetching ------------------------------------------------------------------------------

    async def _fetch_new(self, client: aioimaplib.IMAP4, uidvalidity: int) -> None:
        state = await self.hub.load_state(self.channel, self.state_name) or {}
        last_uid = int(state.get("last_uid") or 0)
        if state.get("uidvalidity") not in (None, uidvalidity):
            # The server renumbered the mailbox: read all of it again; the spool and the hub's
            # Message-ID dedupe keep what was stored before from being stored twice.
            log.warning("IMAP %s: UIDVALIDITY changed from %s to %s; re-reading the mailbox",
                        self.account.name, state.get("uidvalidity"), uidvalidity)
            last_uid = 0
        self._expunged = False
        first = await self._first_new(client, last_uid)
        if first is None:
            if state.get("uidvalidity") != uidvalidity:
                await self.hub.save_state(self.channel, self.state_name, {"uidvalidity": uidvalidity, "last_uid": last_uid})
            return
        end = self._exists
        log.info("IMAP %s: %d new message(s) after UID %d", self.account.name, end - first + 1, last_uid)
        for seq in range(first, end + 1, LIST_WINDOW):
            window = f"{seq}:{min(end, seq + LIST_WINDOW - 1)}"
            response = await self._call(client.fetch(window, "(UID RFC822.SIZE)"))
            if response.result != "OK":
                raise ImapFailure(f"FETCH {window} (UID RFC822.SIZE) failed: {_text(response)}")
            listed = sorted({(i.uid, i.size or 0) for i in parse_fetch(response.lines) if i.uid > last_uid})
            await self._fetch_listed(client, uidvalidity, listed)
            if listed:
                last_uid = listed[-1][0]
            if self._expunged:
                # Another client expunged: the sequence numbers after this window moved. List
                # again from the saved UID (nothing is skipped; what is spooled is not redone).
                self._news = True
                return

    async def _first_new(self, client: aioimaplib.IMAP4, last_uid: int) -> int | None:
        """The sequence number of the first message with a UID over last_uid; None if none.
        New mail is usually the last few messages: probe down from the newest, doubling the step,
        then halve the interval found: about 2 log2(n) one-line answers at most."""
        top = self._exists
        if top == 0 or await self._uid_at(client, top) <= last_uid:
            return None
        if last_uid == 0 or await self._uid_at(client, 1) > last_uid:
            return 1
        newer, older, step = top, 1, 1  # uid_at(newer) > last_uid >= uid_at(older)
        while newer - step > older:
            probe = newer - step
            if await self._uid_at(client, probe) > last_uid:
                newer, step = probe, step * 2
            else:
                older = probe
                break
        while newer - older > 1:
            middle = (newer + older) // 2
            if await self._uid_at(client, middle) > last_uid:
                newer = middle
            else:
                older = middle
        return newer

    async def _uid_at(self, client: aioimaplib.IMAP4, seq: int) -> int:
        response = await self._call(client.fetch(str(seq), "(UID)"))
        found = [i.uid for i in parse_fetch(response.lines) if i.seq == seq]
        if response.result != "OK" or not found:
            raise ImapFailure(f"FETCH {seq} (UID) failed: {_text(response)}")
        return found[0]

    async def _fetch_listed(self, client: aioimaplib.IMAP4, uidvalidity: int, listed: list[tuple[int, int]]) -> None:
        batch: list[tuple[int, int]] = []
        batch_bytes = 0
        for uid, size in listed:
            if size > self.max_message_bytes:
                await self._flush(client, uidvalidity, batch)
                batch, batch_bytes = [], 0
                await self._reject_oversized(client, uidvalidity, uid, size)
                await self._save(uidvalidity, uid)
                continue
            if batch and (len(batch) >= BATCH_MESSAGES or batch_bytes + size > BATCH_BYTES):
                await self._flush(client, uidvalidity, batch)
                batch, batch_bytes = [], 0
            batch.append((uid, size))
            batch_bytes += size
        await self._flush(client, uidvalidity, batch)

    async def _flush(self, client: aioimaplib.IMAP4, uidvalidity: int, batch: list[tuple[int, int]]) -> None:
        if not batch:
            return
        uids = ",".join(str(uid) for uid, _ in batch)
        response = await self._uid_fetch(client, uids, "(UID BODY.PEEK[])", check=False)
        bodies = {i.uid: i.literal for i in parse_fetch(response.lines) if i.literal is not None}
        if response.result != "OK" and len(batch) > 1:
            # One message the server cannot read fails the batch: find it one by one.
            for item in batch:
                await self._flush(client, uidvalidity, [item])
            return
        spooling = []
        for uid, size in batch:
            raw = bodies.get(uid)
            key = self._key(uidvalidity, uid)
            payload = self._payload(uidvalidity, uid, size)
            if raw is not None:
                spooling.append(self.hub.spool(self.channel, key, payload, raw))
            elif response.result != "OK":
                reason = f"the IMAP server could not deliver this message: {_text(response)}"
                await self.hub.reject(self.channel, key, reason, payload)
            else:
                # Expunged between listing and fetching: it is gone from the mailbox.
                log.info("IMAP %s: UID %d vanished before it was fetched", self.account.name, uid)
        # Handed over together (in this order), the hub spools the batch in one transaction.
        await asyncio.gather(*spooling)
        await self._save(uidvalidity, batch[-1][0])

    async def _reject_oversized(self, client: aioimaplib.IMAP4, uidvalidity: int, uid: int, size: int) -> None:
        payload = self._payload(uidvalidity, uid, size)
        try:
            response = await self._uid_fetch(client, str(uid), f"(UID BODY.PEEK[HEADER.FIELDS ({SUMMARY_FIELDS})])")
            found = [i.literal for i in parse_fetch(response.lines) if i.uid == uid and i.literal]
            if found:
                payload["headers"] = found[0][:4000].decode("utf-8", "replace")
        except ImapFailure:
            pass
        reason = (f"message of {size} bytes is over the limit of {self.max_message_bytes} bytes "
                  f"(email.max_message_bytes); left unread in {self.account.name}/{self.account.mailbox}, UID {uid}")
        log.warning("IMAP %s: %s", self.account.name, reason)
        await self.hub.reject(self.channel, self._key(uidvalidity, uid), reason, payload)

    async def _uid_fetch(self, client: aioimaplib.IMAP4, uids: str, parts: str, *, check: bool = True):
        # aioimaplib's fetch timeout is an inactivity timeout: a large body may take its time.
        response = await self._call(client.uid("fetch", uids, parts), timeout=None)
        if check and response.result != "OK":
            raise ImapFailure(f"UID FETCH {uids} {parts} failed: {_text(response)}")
        return response

    async def _save(self, uidvalidity: int, last_uid: int) -> None:
        await self.hub.save_state(self.channel, self.state_name, {"uidvalidity": uidvalidity, "last_uid": last_uid})

    def _key(self, uidvalidity: int, uid: int) -> str:
        return f"imap:{self.account.name}:{uidvalidity}:{uid}"

    def _payload(self, uidvalidity: int, uid: int, size: int) -> dict:
        return {"source": "imap", "account": self.account.name, "mailbox": self.account.mailbox,
                "uidvalidity": uidvalidity, "uid": uid, "size": size}

    # --- waiting -------------------------------------------------------------------------------

    async def _wait(self, seconds: float) -> None:
        """Sleep until the next poll; a lost connection ends the session at once."""
        assert self._lost is not None
        try:
            await asyncio.wait_for(self._lost.wait(), seconds)
        except TimeoutError:
            return
        raise ImapFailure("the connection was lost")

    async def _idle(self, client: aioimaplib.IMAP4) -> None:
        """IDLE until the server reports new mail, the renewal time comes or the line drops."""
        assert self._lost is not None
        renew = min(MAX_IDLE_SECONDS, self._poll_seconds())
        idle_task = await self._call(client.idle_start(timeout=renew))
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            while True:
                push = asyncio.ensure_future(client.wait_server_push(timeout=renew + self.command_timeout))
                done, _ = await asyncio.wait({push, lost}, return_when=asyncio.FIRST_COMPLETED)
                if lost in done:
                    push.cancel()
                    raise ImapFailure("the connection was lost while idling")
                lines = push.result()  # a TimeoutError here: the server went silent
                if lines == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break  # renewal time
                if any(isinstance(line, bytes) and line.upper().endswith(b"EXISTS") for line in lines):
                    break
                if any(isinstance(line, bytes) and line.upper().startswith(b"BYE") for line in lines):
                    raise ImapFailure("the server ended the session: " + b" ".join(lines).decode("utf-8", "replace"))
        finally:
            lost.cancel()
        client.idle_done()
        await self._call(idle_task)


def _quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(response) -> str:
    parts = []
    for line in response.lines[-2:]:
        if isinstance(line, (bytes, bytearray)):
            parts.append(bytes(line)[:300].decode("utf-8", "replace"))
    return f"{response.result} " + " ".join(parts)
