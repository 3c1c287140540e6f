"""What operators and machines ask the hub itself: is it alive, its metrics, its API document;
and the bare address, which sends people to the inbox."""

from __future__ import annotations

import hmac

from aiohttp import web
from sqlalchemy import text

from hub.contract.errors import Unauthenticated
from hub.web import openapi as doc
from hub.web import schemas as s
from hub.web.capability import ApiDoc, Capability
from hub.web.errors import error_response
from hub.web.http import db, json_response
from hub.web.keys import ENGINE, METRICS, OPENAPI, SETTINGS


def _ping(engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def healthz(request: web.Request) -> web.Response:
    try:
        await db(_ping, request.app[ENGINE])
    except Exception as exc:
        return error_response(503, "database_unavailable", f"the store does not answer: {type(exc).__name__}")
    return json_response({"status": "ok", "database": "ok"})


def _metrics_allowed(request: web.Request) -> None:
    """With metrics_token set, /metrics answers only a scraper that presents it: the figures tell
    an outsider how busy the desk is and which back ends fail."""
    token = request.app[SETTINGS].metrics_token
    if token is None:
        return
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode("utf-8", "replace"), expected):
        raise Unauthenticated("/metrics needs 'Authorization: Bearer <metrics_token>' (the metrics_token setting)")


async def metrics(request: web.Request) -> web.Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    _metrics_allowed(request)

    body = await db(generate_latest, request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI])


async def index(request: web.Request) -> web.Response:
    # People who open the hub's address want the inbox (it sends them to sign in first).
    raise web.HTTPFound("/inbox")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/openapi.json", openapi_json)


def openapi() -> ApiDoc:
    paths = {
        "/healthz": {
            "get": doc.op("Liveness and database reachability", {"200": doc.json_response(s.Health), "503": doc.ERROR},
                          security=False, tags=["ops"])
        },
        "/metrics": {
            "get": doc.op("Prometheus metrics (with metrics_token set: 'Authorization: Bearer <metrics_token>')",
                          {"200": {"description": "text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}},
                           **doc.errors(401)},
                          security=False, tags=["ops"])
        },
        "/api/v1/openapi.json": {
            "get": doc.op("This document",
                          {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}},
                          security=False, tags=["ops"])
        },
    }
    return ApiDoc(paths, [s.Health])


capability = Capability("operations", routes=add_routes, openapi=openapi)
