"""A customer's orders for the customer panel: the ones they asked about, as the back end last
described them (the SCM facts that automatic answering attached to their conversations), and the list of
their orders the back end gives now (the optional customer_orders call), when it answers in time."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import Engine, select

from adapters.base import BackendError, UnsupportedCall
from hub.contract.i18n import N_
from hub.contract.timefmt import iso
from hub.store.db import read_tx
from hub.store.models import Conversation, ScmFact

log = logging.getLogger(__name__)
fact_t = ScmFact.__table__
# The panel waits this long for the back end at most: the page must not hang on a slow ERP.
BACKEND_WAIT_SECONDS = 2.0
conversation_t = Conversation.__table__


def known_orders(engine: Engine, customer_id: int, *, limit: int = 10) -> list[dict[str, Any]]:
    with read_tx(engine) as conn:
        rows = conn.execute(
            select(fact_t.c.subject, fact_t.c.payload, fact_t.c.error, fact_t.c.created_at, fact_t.c.conversation_id)
            .join(conversation_t, conversation_t.c.id == fact_t.c.conversation_id)
            .where(conversation_t.c.customer_id == customer_id, fact_t.c.kind == "order")
            .order_by(fact_t.c.id.desc())
            .limit(200)
        ).all()
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r.subject in out or len(out) >= limit:
            continue
        payload = r.payload if isinstance(r.payload, dict) else {}
        out[r.subject] = {
            "ref": payload.get("ref") or r.subject,
            "state": payload.get("state") or (r.error and "unknown"),
            "late": bool(payload.get("late")),
            "expected_date": payload.get("expected_date"),
            "conversation_id": r.conversation_id,
            "as_of": iso(r.created_at),
        }
    return list(out.values())


async def backend_orders(engine: Engine, backend, customer_id: int, *, limit: int = 10,
                         wait: float = BACKEND_WAIT_SECONDS) -> dict[str, Any]:
    """{"orders": [...newest first], "error": None or why there are none (English, marked for translation)}. Never raises: the panel
    shows what it can."""
    from hub.segments import customer_ref

    if backend is None:
        return {"orders": [], "error": None}
    try:
        ref = await asyncio.to_thread(customer_ref, engine, customer_id)
        if not (ref.emails or ref.phones):
            return {"orders": [], "error": None}
        async with asyncio.timeout(wait):
            orders = await backend.customer_orders(ref)
    except UnsupportedCall:
        return {"orders": [], "error": None}
    except (BackendError, TimeoutError) as exc:
        log.info("orders of customer %s: the order system did not answer (%s)", customer_id, type(exc).__name__)
        return {"orders": [], "error": N_("the order system did not answer")}
    except Exception:
        log.exception("orders of customer %s could not be read", customer_id)
        return {"orders": [], "error": N_("the order system could not be read")}
    orders = sorted(orders, key=lambda o: (o.placed_on is not None, o.placed_on), reverse=True)[:limit]
    return {"orders": [{"ref": o.ref, "placed_on": o.placed_on.isoformat() if o.placed_on else None,
                        "total": o.total, "currency": o.currency, "state": o.state} for o in orders], "error": None}
