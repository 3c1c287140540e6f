"""The outbox worker: claims due rows and delivers them, kind "message" through the channel
registry, other kinds through the deliverers of the features that queue them (escalations).

A row's payload is read leniently: rows queued by earlier versions of the hub lack keys that
compose_message() writes today (attachments, buttons), and they still deliver."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import Engine

from hub.contract.delivery import PermanentFailure, TemporaryFailure
from hub.contract.errors import HubError
from hub.contract.messages import Attachment, OutboundMessage
from hub.outbox.queue import claim, mark_failed, mark_sent, release
from hub.store.blobs import BlobStore
from hub.store.models import OutboxStatus
from hub.store.workqueue import PollingWorker, RetryPolicy

log = logging.getLogger(__name__)

Deliverer = Callable[[dict], Awaitable[str | None]]


def outbound_from_payload(
    payload: dict, idempotency_key: str, message_id: int | None, blobs: BlobStore | None = None
) -> OutboundMessage:
    """The OutboundMessage a channel gets; attachments carry their bytes (read from `blobs`)."""
    attachments = tuple(
        Attachment(
            filename=a["filename"],
            content_type=a["content_type"],
            data=blobs.get(a["sha256"]) if blobs is not None else None,
            blob_sha256=a["sha256"],
            size=a.get("size"),
        )
        for a in payload.get("attachments") or ()
    )
    return OutboundMessage(
        attachments=attachments,
        conversation_id=payload["conversation_id"],
        channel=payload["channel"],
        recipient=payload["recipient"],
        text=payload.get("text", ""),
        html=payload.get("html"),
        subject=payload.get("subject"),
        reply_to=tuple(payload.get("reply_to") or ()),
        thread_key=payload.get("thread_key"),
        idempotency_key=idempotency_key,
        message_id=message_id,
        buttons=tuple((str(label), str(data)) for label, data in payload.get("buttons") or ()),
    )


# How long a stopping worker waits for the send in hand (within the process's drain time).
FINISH_ON_STOP_SECONDS = 20.0

class OutboxWorker(PollingWorker):
    """Claims due rows and delivers them: kind "message" through the channel registry, other kinds
    through deliverers registered by the features that create them (escalations, surveys)."""

    def __init__(
        self,
        engine: Engine,
        registry,
        *,
        policy: RetryPolicy = RetryPolicy(),
        batch_size: int = 20,
        poll_seconds: float = 0.5,
        on_result: Callable[[object, str], None] | None = None,
        blobs: BlobStore | None = None,
    ):
        super().__init__()
        self.engine = engine
        self.blobs = blobs
        self.registry = registry
        self.policy = policy
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.deliverers: dict[str, Deliverer] = {}
        self.on_result = on_result

    async def run_once(self) -> int:
        rows = await asyncio.to_thread(claim, self.engine, limit=self.batch_size, policy=self.policy)
        for done, row in enumerate(rows):
            delivery = asyncio.ensure_future(self._deliver(row))
            try:
                await asyncio.shield(delivery)
            except asyncio.CancelledError:
                await self._stop_cleanly(delivery, [r.id for r in rows[done + 1:]])
                raise
        return len(rows)

    async def _stop_cleanly(self, delivery: asyncio.Future, not_started: list[int]) -> None:
        """The worker is stopping (SIGTERM) in the middle of a batch. The send in hand is finished
        and recorded: cut off, it would be sent again once its lease ran out, and the customer could
        get the message twice. The rows not started go back to the queue at once, for another worker."""
        try:
            await asyncio.wait_for(delivery, FINISH_ON_STOP_SECONDS)
        except Exception:  # it failed or took too long: its lease brings it back, as after a crash
            log.warning("stopping: an outbox delivery did not finish within %s s", FINISH_ON_STOP_SECONDS)
        if not_started:
            await asyncio.to_thread(release, self.engine, not_started)

    async def _deliver(self, row) -> None:
        try:
            if row.kind == "message":
                channel = self.registry.get(row.channel)
                message = await asyncio.to_thread(
                    outbound_from_payload, row.payload, row.idempotency_key, row.message_id, self.blobs
                )
                delivery = await channel.send(message)
                external_id = delivery.external_id
            elif row.kind in self.deliverers:
                external_id = await self.deliverers[row.kind](row.payload)
            else:
                raise PermanentFailure(f"no deliverer for outbox kind {row.kind!r}")
        except TemporaryFailure as exc:
            status = await asyncio.to_thread(
                mark_failed, self.engine, row, str(exc), policy=self.policy, retry_after=exc.retry_after
            )
        except (PermanentFailure, HubError) as exc:
            status = await asyncio.to_thread(mark_failed, self.engine, row, str(exc), policy=self.policy, permanent=True)
        except Exception as exc:  # an adapter bug or an unexpected network error: retry
            log.exception("delivering outbox row %s failed", row.id)
            status = await asyncio.to_thread(
                mark_failed, self.engine, row, f"{type(exc).__name__}: {exc}", policy=self.policy
            )
        else:
            await asyncio.to_thread(mark_sent, self.engine, row, external_id)
            status = OutboxStatus.sent
        if self.on_result is not None:
            self.on_result(row, status)
