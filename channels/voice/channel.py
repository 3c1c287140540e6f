"""The voice channel: phone calls arrive as transcripts, by POST /api/v1/calls (routes(), mounted by
the hub through the channel contract) or the drop folder.

Receive only: a call cannot be answered in writing on the phone line, so send() fails for good with
a reason the agent sees on the reply (answer by email or call back).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path

from aiohttp import web

from channels.base import Delivery, HubLink, PermanentFailure, TemporaryFailure
from channels.voice import dropfolder
from channels.voice.call import CHANNEL, message_from_record
from channels.voice.record import CallIn
from hub.contract.errors import RejectedInput
from hub.contract.messages import OutboundMessage

log = logging.getLogger(__name__)

CANNOT_SEND = (
    "the voice channel cannot deliver this reply: a phone conversation cannot be answered in writing; "
    "reply by email or call the customer back"
)


CALLS_PATH = "/api/v1/calls"


class VoiceChannel:
    name = CHANNEL

    def __init__(
        self,
        drop_dir: Path | None = None,
        *,
        poll_seconds: float = 2.0,
        settle_seconds: float = 2.0,
        orphan_seconds: float = 60.0,
        max_file_bytes: int = 25 * 1_048_576,
        batch_size: int = 50,
    ):
        self.drop_dir = Path(drop_dir) if drop_dir is not None else None
        self.poll_seconds = poll_seconds
        self.settle_seconds = settle_seconds
        self.orphan_seconds = orphan_seconds
        self.max_file_bytes = max_file_bytes
        self.batch_size = batch_size
        self.hub: HubLink | None = None
        self._poller: asyncio.Task | None = None
        self._last_error: str | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self, hub: HubLink) -> None:
        """Watch the drop folder, if one is configured (the API route needs nothing started)."""
        self.hub = hub
        if self.drop_dir is not None:
            self._poller = asyncio.create_task(self._watch(), name="voice-drop-folder")

    async def stop(self) -> None:
        task, self._poller = self._poller, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def send(self, message: OutboundMessage) -> Delivery:
        raise PermanentFailure(CANNOT_SEND)

    # --- the calls API -----------------------------------------------------------------------------

    def routes(self) -> list:
        return [web.post(CALLS_PATH, self.post_call)]

    async def post_call(self, request: web.Request) -> web.Response:
        """A call record with its transcript, from a phone system (integration token). The answer is
        that of POST /api/v1/messages: 201 with the ids when stored, 200 with created false when
        that call id was stored before."""
        hub = self.hub
        if hub is None:
            raise TemporaryFailure("the voice channel is not started")
        hub.authenticate(request, "integration")
        # A transcript is a document, like an attachment: an hour's Amazon Transcribe output is ~2.3 MB,
        # far over the small limit of ordinary JSON bodies.
        body = await hub.read_json(request, CallIn, document=True)
        try:
            # Parsing a large transcript is CPU work: off the event loop.
            message = await asyncio.to_thread(message_from_record, body)
        except RejectedInput:
            hub.rejected(CHANNEL)
            raise
        result = await hub.ingest(message)
        return web.Response(
            status=201 if result.created else 200,
            text=json.dumps(
                {
                    "customer_id": result.customer_id,
                    "conversation_id": result.conversation_id,
                    "message_id": result.message_id,
                    "created": result.created,
                }
            ),
            content_type="application/json",
        )

    # --- receiving ---------------------------------------------------------------------------------

    async def process(self, payload: dict, raw: bytes | None) -> None:
        """A spooled drop-folder file: read it and store the call (RejectedInput rejects it)."""
        if self.hub is None:
            raise TemporaryFailure("the voice channel is not started")
        # A transcript can be megabytes: parsed in the hub's parser processes, within the item's budget.
        message = await self.hub.run_parser(dropfolder.message_from_file, payload, raw)
        await self.hub.ingest(message)

    async def _watch(self) -> None:
        while True:
            try:
                await self.poll_once()
                self._last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The folder gone, the store down: say it once, keep trying; files stay where they are.
                text = f"{type(exc).__name__}: {exc}"
                if text != self._last_error:
                    log.error("voice drop folder %s: %s", self.drop_dir, text, exc_info=not isinstance(exc, OSError))
                self._last_error = text
            await asyncio.sleep(self.poll_seconds)

    async def poll_once(self) -> int:
        """Take what the drop folder holds: spool it and move it to done/, or record it as rejected
        and move it to rejected/. Returns how many items were taken."""
        if self.drop_dir is None or self.hub is None:
            return 0
        folder = self.drop_dir
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        items = await asyncio.to_thread(
            dropfolder.pending, folder,
            settle_seconds=self.settle_seconds, orphan_seconds=self.orphan_seconds,
        )
        for item in items[: self.batch_size]:
            await self._take(folder, item)
        return min(len(items), self.batch_size)

    async def _take(self, folder: Path, item: dropfolder.Item) -> None:
        item = await asyncio.to_thread(dropfolder.load, item, max_bytes=self.max_file_bytes)
        if item.error is None:
            # Checked now, so a bad file is sent back to rejected/ at once, where whoever dropped
            # it will look; process() reads it again from the spool.
            try:
                await asyncio.to_thread(dropfolder.message_from_file, item.payload, item.raw)
            except RejectedInput as exc:
                item.error = exc.message
        assert self.hub is not None
        if item.error is not None:
            log.warning("voice drop folder: %s rejected: %s", item.name, item.error)
            await self.hub.reject(CHANNEL, item.key, item.error, item.payload, item.raw)
            await asyncio.to_thread(dropfolder.move, item, folder, reason=item.error)
            return
        await self.hub.spool(CHANNEL, item.key, item.payload, item.raw)
        await asyncio.to_thread(dropfolder.move, item, folder)
