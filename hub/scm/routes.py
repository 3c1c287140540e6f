"""SCM routes (issue 7): order and stock facts, escalations and their events, demand; and the
background work behind them (the routing worker, the escalation deliverer, the demand push)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
from aiohttp import web

from hub.scm import demand
from hub.scm import escalation
from hub.scm import autoanswer as routing
from hub.contract.errors import RejectedInput
from hub.scm import schemas as s
from hub.web.api import _json, db, parse_body, path_id, principal
from hub.web.app import ENGINE, INGEST_LISTENERS, REGISTRY, SETTINGS, WORKER
from hub.runtime.roles import ELECTIONS

log = logging.getLogger(__name__)

# pydantic shapes these routes document (added to the OpenAPI components)
OPENAPI_MODELS: list = [
    s.ConversationFacts, s.EscalationIn, s.EscalationOut, s.EscalationEventIn, s.DemandPage,
]

AGENTS = ("agent", "admin")
SCM_SERVICES = web.AppKey("scm_services", object)  # hub.scm.ScmServices, or None when not running here
ROUTING = web.AppKey("routing_worker", object)  # hub.scm.autoanswer.RoutingWorker, or None


# --- handlers ---------------------------------------------------------------------------------


async def get_facts(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    return _json(await db(routing.conversation_facts, request.app[ENGINE], path_id(request)))


async def post_escalation(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    cid = path_id(request)
    body = await parse_body(request, s.EscalationIn)
    target = escalation.escalation_target(request.app[SETTINGS], body.target)
    result = await db(escalation.escalate, request.app[ENGINE], cid, who, body.reason, target=target)
    request.app[WORKER].wake()
    return _json(result, status=201)


async def get_escalation(request: web.Request) -> web.Response:
    principal(request, *AGENTS, "backoffice")
    return _json(await db(escalation.get_escalation, request.app[ENGINE], path_id(request)))


async def post_escalation_event(request: web.Request) -> web.Response:
    who = principal(request, "backoffice")
    eid = path_id(request)
    body = await parse_body(request, s.EscalationEventIn)
    result, created = await db(
        escalation.record_event, request.app[ENGINE], eid, who,
        status=body.status, comment=body.comment, external_reference=body.external_reference, event_key=body.event_id,
    )
    return _json(result, status=201 if created else 200)


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
    return _json({"from": query.start.isoformat(), "to": query.end.isoformat(), "unmet": query.unmet, "items": rows})


# --- wiring -------------------------------------------------------------------------------------


def setup(app: web.Application) -> None:
    """Add the routes and the background work (the routing worker) to the app."""
    app[SCM_SERVICES] = None
    app[ROUTING] = None
    app.router.add_get("/api/v1/conversations/{id}/facts", get_facts)
    app.router.add_post("/api/v1/conversations/{id}/escalations", post_escalation)
    app.router.add_get("/api/v1/escalations/{id}", get_escalation)
    app.router.add_post("/api/v1/escalations/{id}/events", post_escalation_event)
    app.router.add_get("/api/v1/demand", get_demand)
    app.cleanup_ctx.append(_scm_workers)


async def _scm_workers(app: web.Application):
    """Runs before the outbox worker starts (cleanup contexts start in order), so the escalation
    deliverer is registered before any escalation row can be claimed."""
    from hub.scm.backend import build_services

    settings = app[SETTINGS]
    engine = app[ENGINE]
    session = aiohttp.ClientSession()
    deliverer = escalation.EscalationDelivery(engine, settings, registry=app[REGISTRY], session=session)
    app[WORKER].deliverers[escalation.OUTBOX_KIND] = deliverer
    tasks: list[asyncio.Task] = []
    services = None
    # Like the outbox: with outbox_inline_worker off, another process does the background work.
    if settings.outbox_inline_worker and (settings.scm.enabled or settings.scm.demand_push
                                          or settings.scm.effective_escalation_target == "backend"):
        # A misconfigured back end stops the start with a ConfigError naming the setting; a back
        # end that is merely down shows as BackendUnavailable on the first call instead.
        services = await asyncio.to_thread(build_services, settings)
    if services is not None:
        app[SCM_SERVICES] = services
        deliverer.backend = services.backend
        if settings.scm.enabled:
            worker = routing.RoutingWorker(
                engine, services, settings.scm,
                escalation_target=_rule_target(settings),
                on_queued=app[WORKER].wake,
            )
            app[ROUTING] = worker
            app[INGEST_LISTENERS].append(lambda result, message: worker.wake())
            tasks.append(asyncio.create_task(worker.run(), name="routing-worker"))
        if settings.scm.demand_push:
            pusher = demand.DemandPusher(engine, services.backend, interval_seconds=settings.scm.demand_push_interval_seconds)
            # One push at a time among all the hub's processes: a day's signal is pushed once.
            tasks.append(asyncio.create_task(app[ELECTIONS].run("demand-push", pusher.run), name="demand-pusher"))
    yield
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await session.close()
    if services is not None:
        with contextlib.suppress(Exception):
            await services.close()


def _rule_target(settings) -> str | None:
    try:
        return escalation.escalation_target(settings)
    except Exception:
        return None


# --- the OpenAPI document -------------------------------------------------------------------------


def openapi_paths() -> dict:
    from hub.web.openapi import _errors, _json as json_response, _op, _path_id, _query

    auth_errors = _errors(401, 403)
    day = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
    demand_ok = {
        "description": "demand per day and SKU: JSON, or CSV with format=csv or Accept: text/csv",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/DemandPage"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
    return {
        "/api/v1/conversations/{id}/facts": {
            "get": _op(
                "Order and stock facts the back end gave for this conversation, the drafted replies waiting "
                "for the agent, the automatic answers sent, and its escalations",
                {"200": json_response(s.ConversationFacts), **auth_errors, **_errors(400, 404)},
                params=[_path_id()], tags=["scm"],
            )
        },
        "/api/v1/conversations/{id}/escalations": {
            "post": _op(
                "Escalate the conversation to the back office (signed webhook, email or the back end, "
                "delivered through the outbox with retries)",
                {"201": json_response(s.EscalationOut), **auth_errors, **_errors(400, 404, 413, 422)},
                body=s.EscalationIn, params=[_path_id()], tags=["scm"],
            )
        },
        "/api/v1/escalations/{id}": {
            "get": _op(
                "An escalation with its delivery state and the back office's events (agents, back-office token)",
                {"200": json_response(s.EscalationOut), **auth_errors, **_errors(400, 404)},
                params=[_path_id()], tags=["scm"],
            )
        },
        "/api/v1/escalations/{id}/events": {
            "post": _op(
                "The back office reports progress (back-office token); shown in the conversation's timeline. "
                "201: recorded; 200: this event_id was recorded before",
                {"201": json_response(s.EscalationOut, "recorded"), "200": json_response(s.EscalationOut, "a repeated event_id"),
                 **auth_errors, **_errors(400, 404, 413, 422)},
                body=s.EscalationEventIn, params=[_path_id()], tags=["scm"],
            )
        },
        "/api/v1/demand": {
            "get": _op(
                "Stock questions per product and day, with how often the product was unavailable "
                "(agents, back-office token)",
                {"200": demand_ok, **auth_errors, **_errors(422)},
                params=[
                    _query("from", day, "first day (default: 29 days before `to`)"),
                    _query("to", day, "last day, inclusive (default: today, UTC)"),
                    _query("unmet", {"type": "string", "enum": ["true", "false"]}, "only days where it was unavailable"),
                    _query("sku", {"type": "string", "minLength": 1, "maxLength": 100}, "one product"),
                    _query("format", {"type": "string", "enum": ["json", "csv"]}, "json (default) or csv"),
                ],
                tags=["scm"],
            )
        },
    }
