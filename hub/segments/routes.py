"""Customer value and segments: an admin's manual segment, recomputation on demand, the
customer list by segment; and the background worker that recomputes figures on a schedule."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import select

from hub import conversations
from hub.contract.errors import RejectedInput
from hub.runtime.pacing import Pacer
from hub.runtime.workers import Worker
from hub.segments import value as segments
from hub.store.db import read_tx
from hub.store.models import Customer, CustomerValue, Segment
from hub.store.search_text import search_text
from hub.web import openapi as doc
from hub.web.capability import ApiDoc, Capability
from hub.web.http import AGENTS, MAX_ID, db, json_response, parse_body, path_id, principal
from hub.web.keys import ENGINE, INGEST_METER, SCM_SERVICES, SEGMENT_WORKER, SETTINGS
from hub.web.process import elected
from hub.web.schemas import Strict

log = logging.getLogger(__name__)

MAX_PAGE = 200

SegmentName = Literal["general", "potential", "key"]


# --- shapes -------------------------------------------------------------------------------------

class SegmentIn(Strict):
    segment: SegmentName | None = Field(
        description="set by hand and locked (recomputation keeps it); null hands the segment back to the computation")


class RecomputeIn(Strict):
    customer_id: int | None = Field(default=None, ge=1, le=2_147_483_647,
                                       description="one customer now; omitted: every customer, by the background worker")


class CustomerValueOut(BaseModel):
    order_value: float = Field(description="value of the orders in the window, in `currency`")
    order_count: int
    currency: str
    contacts: int = Field(description="conversations opened in the window")
    messages: int = Field(description="inbound messages in the window")
    window_days: int
    source: Literal["scm", "contacts", "stale"] = Field(
        description="scm: orders from the back end; contacts: contact history only (no back end, or it cannot list "
                    "a customer's orders); stale: the back end was down, order figures kept from orders_as_of")
    error: str | None
    orders_as_of: datetime | None
    computed_at: datetime


class CustomerSegmentOut(BaseModel):
    customer_id: int
    segment: SegmentName
    segment_locked: bool = Field(description="set by hand: recomputation keeps it")
    value: CustomerValueOut | None = Field(description="null until first computed")


class RecomputeOut(BaseModel):
    due: int = Field(description="customers whose figures the background worker recomputes next")


class CustomerSummary(BaseModel):
    id: int
    name: str | None
    segment: SegmentName
    segment_locked: bool
    order_value: float | None
    order_count: int | None
    contacts: int | None
    currency: str | None
    computed_at: datetime | None


class CustomerPage(BaseModel):
    items: list[CustomerSummary]
    next_cursor: str | None


# --- handlers -----------------------------------------------------------------------------------

async def put_segment(request: web.Request) -> web.Response:
    who = principal(request, "admin")
    cid = path_id(request)
    body = await parse_body(request, SegmentIn)
    out = await db(segments.set_manual_segment, request.app[ENGINE], cid, body.segment, who)
    worker = request.app[SEGMENT_WORKER]
    if body.segment is None and worker is not None:
        worker.wake()  # handed back: computed again now
    return json_response(out)


async def post_recompute(request: web.Request) -> web.Response:
    who = principal(request, "admin")
    body = await parse_body(request, RecomputeIn)
    app = request.app
    engine, settings = app[ENGINE], app[SETTINGS]
    services = app[SCM_SERVICES]
    worker = app[SEGMENT_WORKER]
    # One customer at once, when this process reaches the back end (or the hub runs without
    # one); otherwise the worker that does reach it recomputes them.
    due = await db(segments.request_recompute, engine, body.customer_id, who.actor)
    if body.customer_id is not None and (services is not None or not settings.scm.enabled):
        await segments.recompute_customer(engine, services.backend if services else None, settings.segments,
                                          body.customer_id)
        log.info("segments: customer %s recomputed on request by %s", body.customer_id, who.actor)
        return json_response(await db(segments.customer_segment, engine, body.customer_id))
    log.info("segments: recomputation of %s requested by %s", body.customer_id or "every customer", who.actor)
    if worker is not None:
        worker.wake()
    return json_response({"due": due}, status=202)


async def list_customers(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    q = request.query
    segment = q.get("segment") or None
    if segment is not None and segment not in Segment.__members__:
        raise RejectedInput(f"segment must be one of: {', '.join(Segment.__members__)}")
    limit = _int(q.get("limit"), "limit", 1, MAX_PAGE) or 50
    after = _int(q.get("cursor"), "cursor", 1, MAX_ID)
    text = search_text(q.get("q"))
    return json_response(await db(_customers_page, request.app[ENGINE], segment, limit, after, text))


def _int(raw: str | None, name: str, low: int, high: int) -> int | None:
    if raw in (None, ""):
        return None
    if not raw.isdigit() or not (low <= int(raw) <= high):
        raise RejectedInput(f"{name} must be an integer from {low} to {high}")
    return int(raw)


def _customers_page(engine, segment: str | None, limit: int, after: int | None, text: str | None = None) -> dict:
    """Customers by id (newest first), keyset-paginated; merged tombstones left out; with a text,
    those whose name or an address holds it (as the inbox search finds them)."""
    c, v = Customer.__table__, CustomerValue.__table__
    stmt = (select(c.c.id, c.c.name, c.c.segment, c.c.segment_locked, v.c.order_value, v.c.order_count,
                   v.c.contacts, v.c.currency, v.c.computed_at)
            .select_from(c.outerjoin(v, v.c.customer_id == c.c.id))
            .where(c.c.merged_into.is_(None)).order_by(c.c.id.desc()).limit(limit + 1))
    if segment is not None:
        stmt = stmt.where(c.c.segment == segment)
    if after is not None:
        stmt = stmt.where(c.c.id < after)
    with read_tx(engine) as conn:
        if text:
            stmt = stmt.where(*conversations.customers_holding(conn, conversations.as_phone(text)))
        rows = conn.execute(stmt).all()
    page = rows[:limit]
    items = [{"id": r.id, "name": r.name, "segment": r.segment, "segment_locked": bool(r.segment_locked),
              "order_value": r.order_value, "order_count": r.order_count, "contacts": r.contacts,
              "currency": r.currency, "computed_at": r.computed_at.isoformat() if r.computed_at else None}
             for r in page]
    return {"items": items, "next_cursor": str(page[-1].id) if len(rows) > limit else None}


# --- wiring -------------------------------------------------------------------------------------

def setup(app: web.Application) -> None:
    app[SEGMENT_WORKER] = None


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/customers", list_customers)
    app.router.add_put("/api/v1/customers/{id}/segment", put_segment)
    app.router.add_post("/api/v1/segments/recompute", post_recompute)


def workers(app: web.Application) -> list[Worker]:
    """The recomputation worker: values customers from the SCM back end the scm capability opened
    (it comes before this one), or from contact history without one."""
    settings = app[SETTINGS]
    # Like the outbox: with outbox_inline_worker off, another process does the background work.
    if not (settings.segments.enabled and settings.outbox_inline_worker):
        return []
    services = app[SCM_SERVICES]
    if services is None and settings.scm.enabled:
        log.warning("segments: the SCM back end is not running here; customers are valued from contact history")
    worker = segments.SegmentWorker(app[ENGINE], services.backend if services else None, settings.segments,
                                    pacer=Pacer(app[INGEST_METER]))
    app[SEGMENT_WORKER] = worker
    # One recomputation at a time among all the hub's processes.
    return [elected(app, "segments", Worker("segment-worker", worker.run))]


# --- the OpenAPI document -----------------------------------------------------------------------

OPENAPI_MODELS: list = [SegmentIn, RecomputeIn, CustomerValueOut, CustomerSegmentOut, RecomputeOut, CustomerSummary,
                        CustomerPage]


def openapi() -> ApiDoc:
    auth_errors = doc.errors(401, 403)
    paths = {
        "/api/v1/customers": {
            "get": doc.op(
                "Customers with their segment and value figures, newest first (filter by segment, or find a text in a "
                "name or an address)",
                {"200": doc.json_response(CustomerPage), **auth_errors, **doc.errors(400, 422)},
                params=[
                    doc.query("segment", {"type": "string", "enum": ["general", "potential", "key"]}, "the segment"),
                    doc.query("q", {"type": "string", "maxLength": 200}, "text in the customer's name or an address"),
                    doc.query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}, "page size (default 50)"),
                    doc.query("cursor", {"type": "string", "pattern": "^[1-9][0-9]{0,9}$"}, "next_cursor of the previous page"),
                ],
                tags=["customers"],
            )
        },
        "/api/v1/customers/{id}/segment": {
            "put": doc.op(
                "Set the customer's segment by hand (admin): locked, recomputation keeps it; null unlocks it. "
                "Audit-logged",
                {"200": doc.json_response(CustomerSegmentOut), **auth_errors, **doc.errors(400, 404, 409, 413, 422)},
                body=SegmentIn, params=[doc.path_id()], tags=["customers"],
            )
        },
        "/api/v1/segments/recompute": {
            "post": doc.op(
                "Recompute customer value and segments (admin): one customer now (200), or every customer "
                "by the background worker (202)",
                {"200": doc.json_response(CustomerSegmentOut, "recomputed now"),
                 "202": doc.json_response(RecomputeOut, "queued for the background worker"),
                 **auth_errors, **doc.errors(400, 404, 409, 413, 422)},
                body=RecomputeIn, tags=["customers"],
            )
        },
    }
    return ApiDoc(paths, OPENAPI_MODELS)


capability = Capability("segments", setup=setup, routes=add_routes, openapi=openapi, workers=workers, requires=("process", "scm"))
