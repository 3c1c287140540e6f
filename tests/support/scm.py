"""The SCM routing's test kit: the demo SCM database behind the real `sql` back end, a routing
policy that retries at once, and the automatic answers the routing queued. The fixtures that wrap
these live in the conftest.py of the directories that use them."""

from __future__ import annotations

import contextlib

from sqlalchemy import select

from adapters.config import SqlSettings
from adapters.demo_scm import seed_demo_scm
from adapters.sql import SqlBackend
from hub.config.settings import ScmSettings
from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.scm.backend import ScmServices
from hub.store.db import read_tx
from hub.store.models import Conversation, Message, Outbox, ReplyDraft, ScmFact

message_t = Message.__table__
outbox_t = Outbox.__table__
fact_t = ScmFact.__table__
draft_t = ReplyDraft.__table__
conversation_t = Conversation.__table__

CHLOE = "chloe.martin@example.com"  # owns SO-4711 (shipped with DHL) in the demo SCM data
ANA = "ana.silva@example.com"  # owns A1001 (shipped, late)


def telegram(user, text, *, external_id):
    return InboundMessage("telegram", external_id, Sender(user, "Ben Okafor"), text, thread=ThreadHints(thread_key=user))


async def drain(worker) -> None:
    """Run a routing worker until it finds nothing more to do."""
    while await worker.run_once():
        pass


def policy(**overrides) -> ScmSettings:
    values = {"auto_answer_min_confidence": 0.5, "routing_retry_base_seconds": 0.01, "routing_retry_max_seconds": 0.02}
    values.update(overrides)
    return ScmSettings(**values)


def demo_scm_url(tmp_path) -> str:
    """The demo SCM database, seeded under tmp_path; its URL."""
    return seed_demo_scm(tmp_path / "scm")


@contextlib.asynccontextmanager
async def scm_services(scm_url: str):
    """ScmServices over the `sql` back end at scm_url, its catalogue loaded."""
    svc = ScmServices(SqlBackend(SqlSettings(), url=scm_url))
    await svc.refresh_catalogue(force=True)
    try:
        yield svc
    finally:
        await svc.close()


def automatic_answers(engine):
    """Outbound messages marked automatic, with their outbox rows."""
    with read_tx(engine) as conn:
        found = conn.execute(
            select(message_t.c.id, message_t.c.metadata, message_t.c.text, outbox_t.c.channel, outbox_t.c.payload)
            .join(outbox_t, outbox_t.c.message_id == message_t.c.id)
            .where(message_t.c.direction == "outbound")
            .order_by(message_t.c.id)
        ).all()
    return [r for r in found if (r.metadata or {}).get("automatic")]
