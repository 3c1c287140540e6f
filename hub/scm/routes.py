"""SCM routes: order and stock facts, escalations and their events, demand; and the
background work behind them (the routing worker, the escalation deliverer, the demand push)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
from aiohttp import web

from hub.contract.errors import RejectedInput
from hub.runtime.workers import Worker
from hub.scm import autoanswer as routing
from hub.scm import demand, escalation
from hub.scm import schemas as s
from hub.web import openapi as doc
from hub.web.capability import ApiDoc, Capability
from hub.web.changes import conversation_changed
from hub.web.http import AGENTS, db, json_response, parse_body, path_id, principal
from hub.web.keys import ENGINE, INGEST_LISTENERS, REGISTRY, ROUTING, SCM_SERVICES, SETTINGS, WORKER
from hub.web.process import elected

log = logging.getLogger(__name__)

# pydantic shapes these routes document (added to the OpenAPI components)
OPENAPI_MODELS: list = [
    s.ConversationFacts, s.EscalationIn, s.EscalationOut, s.EscalationEventIn, s.DemandPage,
]


# --- handlers ---------------------------------------------------------------------------------


async def get_facts(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    return json_response(await db(routing.conversation_facts, request.app[ENGINE], path_id(request)))


async def post_escalation(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    cid = path_id(request)
    body = await parse_body(request, s.EscalationIn)
    target = escalation.escalation_target(request.app[SETTINGS], body.target)
    result = await db(escalation.escalate, request.app[ENGINE], cid, who, body.reason, target=target)
    request.app[WORKER].wake()
    conversation_changed(request.app, cid, moves_timers=False)
    return json_response(result, status=201)


async def get_escalation(request: web.Request) -> web.Response:
    principal(request, *AGENTS, "backoffice")
    return json_response(await db(escalation.get_escalation, request.app[ENGINE], path_id(request)))


async def post_escalation_event(request: web.Request) -> web.Response:
    who = principal(request, "backoffice")
    eid = path_id(request)
    body = await parse_body(request, s.EscalationEventIn)
    result, created = await db(
        escalation.record_event, request.app[ENGINE], eid, who,
        status=body.status, comment=body.comment, external_reference=body.external_reference, event_key=body.event_id,
    )
    return json_response(result, status=201 if created else 200)


def _wants_csv(request: web.Request) -> bool:
    fmt = request.query.get("format")
    if fmt:
        if fmt not in ("json", "csv"):
            raise RejectedInput("format must be json or csv")
        return fmt == "csv"
    accept = request.headers.get("Accept", "")
    return "text/csv" in accept and "application/json" not in accept


async def get_demand(request: web.Request) -> web.Response:
    principal(request, *AGENTS, "backoffice")
    q = request.query
    query = demand.parse_query(q.get("from"), q.get("to"), q.get("unmet"), q.get("sku"))
    csv_wanted = _wants_csv(request)
    rows = await db(demand.demand, request.app[ENGINE], query)
    if csv_wanted:
        name = f"demand-{query.start.isoformat()}-{query.end.isoformat()}{'-unmet' if query.unmet else ''}.csv"
        return web.Response(text=demand.to_csv(rows), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return json_response({"from": query.start.isoformat(), "to": query.end.isoformat(), "unmet": query.unmet, "items": rows})


# --- wiring -------------------------------------------------------------------------------------


def setup(app: web.Application) -> None:
    app[SCM_SERVICES] = None
    app[ROUTING] = None


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/conversations/{id}/facts", get_facts)
    app.router.add_post("/api/v1/conversations/{id}/escalations", post_escalation)
    app.router.add_get("/api/v1/escalations/{id}", get_escalation)
    app.router.add_post("/api/v1/escalations/{id}/events", post_escalation_event)
    app.router.add_get("/api/v1/demand", get_demand)


@contextlib.asynccontextmanager
async def lifespan(app: web.Application):
    """The escalation deliverer and, where this process reaches it, the SCM back end. Entered before
    any worker starts (the outbox's included), so the deliverer is registered before any escalation
    row can be claimed."""
    from hub.scm.backend import build_services

    settings = app[SETTINGS]
    session = aiohttp.ClientSession()
    deliverer = escalation.EscalationDelivery(app[ENGINE], settings, registry=app[REGISTRY], session=session)
    app[WORKER].deliverers[escalation.OUTBOX_KIND] = deliverer
    services = None
    try:
        # Like the outbox: with outbox_inline_worker off, another process does the background work.
        if settings.outbox_inline_worker and (settings.scm.enabled or settings.scm.demand_push
                                              or settings.scm.effective_escalation_target == "backend"):
            # A misconfigured back end stops the start with a ConfigError naming the setting; a back
            # end that is merely down shows as BackendUnavailable on the first call instead.
            services = await asyncio.to_thread(build_services, settings)
        if services is not None:
            app[SCM_SERVICES] = services
            deliverer.backend = services.backend
        yield
    finally:
        await session.close()
        if services is not None:
            with contextlib.suppress(Exception):
                await services.close()


def workers(app: web.Application) -> list[Worker]:
    """Auto-answering and the demand push, when this process reaches the back end."""
    settings, services = app[SETTINGS], app[SCM_SERVICES]
    if services is None:
        return []
    out = []
    if settings.scm.enabled:
        worker = routing.RoutingWorker(
            app[ENGINE], services, settings.scm,
            escalation_target=_rule_target(settings),
            on_queued=app[WORKER].wake,
        )
        app[ROUTING] = worker
        app[INGEST_LISTENERS].append(lambda result, message: worker.wake())
        out.append(Worker("routing-worker", worker.run))
    if settings.scm.demand_push:
        pusher = demand.DemandPusher(app[ENGINE], services.backend, interval_seconds=settings.scm.demand_push_interval_seconds)
        # One push at a time among all the hub's processes: a day's signal is pushed once.
        out.append(elected(app, "demand-push", Worker("demand-pusher", pusher.run)))
    return out


def _rule_target(settings) -> str | None:
    try:
        return escalation.escalation_target(settings)
    except Exception:
        return None


# --- the OpenAPI document -------------------------------------------------------------------------


def openapi() -> ApiDoc:
    auth_errors = doc.errors(401, 403)
    day = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
    demand_ok = {
        "description": "demand per day and SKU: JSON, or CSV with format=csv or Accept: text/csv",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/DemandPage"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
    paths = {
        "/api/v1/conversations/{id}/facts": {
            "get": doc.op(
                "Order and stock facts the back end gave for this conversation, the drafted replies waiting "
                "for the agent, the automatic answers sent, and its escalations",
                {"200": doc.json_response(s.ConversationFacts), **auth_errors, **doc.errors(400, 404)},
                params=[doc.path_id()], tags=["scm"],
            )
        },
        "/api/v1/conversations/{id}/escalations": {
            "post": doc.op(
                "Escalate the conversation to the back office (signed webhook, email or the back end, "
                "delivered through the outbox with retries)",
                {"201": doc.json_response(s.EscalationOut), **auth_errors, **doc.errors(400, 404, 413, 422)},
                body=s.EscalationIn, params=[doc.path_id()], tags=["scm"],
            )
        },
        "/api/v1/escalations/{id}": {
            "get": doc.op(
                "An escalation with its delivery state and the back office's events (agents, back-office token)",
                {"200": doc.json_response(s.EscalationOut), **auth_errors, **doc.errors(400, 404)},
                params=[doc.path_id()], tags=["scm"],
            )
        },
        "/api/v1/escalations/{id}/events": {
            "post": doc.op(
                "The back office reports progress (back-office token); shown in the conversation's timeline. "
                "201: recorded; 200: this event_id was recorded before",
                {"201": doc.json_response(s.EscalationOut, "recorded"), "200": doc.json_response(s.EscalationOut, "a repeated event_id"),
                 **auth_errors, **doc.errors(400, 404, 413, 422)},
                body=s.EscalationEventIn, params=[doc.path_id()], tags=["scm"],
            )
        },
        "/api/v1/demand": {
            "get": doc.op(
                "Stock questions per product and day, with how often the product was unavailable "
                "(agents, back-office token)",
                {"200": demand_ok, **auth_errors, **doc.errors(422)},
                params=[
                    doc.query("from", day, "first day (default: 29 days before `to`)"),
                    doc.query("to", day, "last day, inclusive (default: today, UTC)"),
                    doc.query("unmet", {"type": "string", "enum": ["true", "false"]}, "only days where it was unavailable"),
                    doc.query("sku", {"type": "string", "minLength": 1, "maxLength": 100}, "one product"),
                    doc.query("format", {"type": "string", "enum": ["json", "csv"]}, "json (default) or csv"),
                ],
                tags=["scm"],
            )
        },
    }
    return ApiDoc(paths, OPENAPI_MODELS)


capability = Capability("scm", setup=setup, routes=add_routes, openapi=openapi, workers=workers, lifespan=lifespan,
                        requires=("process", "outbox"))
