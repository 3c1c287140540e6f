"""The log channel: records what would be sent instead of sending it.

It stands in for every channel that has no real adapter configured yet, so replies on those
channels are visible (data/outbound.jsonl and the hub's log) rather than silently dropped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

from channels.base import Delivery, HubLink, PermanentFailure
from hub.contract.messages import OutboundMessage

log = logging.getLogger(__name__)


class LogChannel:
    def __init__(self, name: str = "log", path: Path | None = None):
        self.name = name
        self.path = path
        self.sent: list[OutboundMessage] = []

    async def start(self, hub: HubLink) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, message: OutboundMessage) -> Delivery:
        self.sent.append(message)
        log.info("log channel %s: to %s: %.80r", self.name, message.recipient, message.text)
        if self.path is not None:
            record = {k: v for k, v in asdict(message).items() if k != "attachments"}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        return Delivery(external_id=f"log:{message.idempotency_key}")

    async def process(self, payload: dict, raw: bytes | None) -> None:
        raise PermanentFailure("the log channel receives nothing")
