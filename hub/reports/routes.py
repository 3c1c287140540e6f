"""Reports (issue 9) as JSON, CSV and SVG charts, and privacy: export and erase a customer.

Reports are for every agent (agent and admin); privacy requests are for admins only, and each one
is written to the audit log. The inbox pages for both (hub/web/inbox/reports.py, privacy.py) are
registered here too, so the issue-9 wiring stays in one place.
"""

from __future__ import annotations

import json

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.privacy import requests as privacy
from hub.reports import queries as reports
from hub.contract.errors import RejectedInput
from hub.web.api import _json, db, parse_body, path_id, principal
from hub.web.app import BLOBS, ENGINE, SETTINGS

AGENTS = ("agent", "admin")
FORMATS = ("json", "csv", "svg")


# --- shapes (documented in the OpenAPI document) --------------------------------------------------


class ReportOut(BaseModel):
    """Every report: the range it covers and a table (columns, rows of flat values)."""

    model_config = ConfigDict(extra="allow")
    report: str
    title: str
    from_: str = Field(alias="from")
    to: str
    tz: str
    columns: list[str]
    rows: list[dict]


class ReportList(BaseModel):
    reports: list[dict]


class EraseIn(BaseModel):
    """Erasing cannot be undone: the caller repeats the customer's id to confirm."""

    model_config = ConfigDict(extra="forbid")
    confirm: int = Field(description="the customer's id again, as confirmation", ge=1, le=2_147_483_647)
    reason: str | None = Field(default=None, max_length=500, description="why (a request reference), for the audit log")


class EraseOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    customer_id: int
    erased: dict


class CustomerExport(BaseModel):
    """Everything the hub holds about one customer (see hub/privacy/requests.py)."""

    model_config = ConfigDict(extra="allow")
    format: str
    customer: dict


OPENAPI_MODELS: list = [ReportOut, ReportList, EraseIn, EraseOut, CustomerExport]


# --- reports ----------------------------------------------------------------------------------------


def _format(request: web.Request, suffix: str | None) -> str:
    if suffix:
        return suffix
    fmt = request.query.get("format")
    if fmt:
        if fmt not in FORMATS:
            raise RejectedInput("format must be json, csv or svg")
        return fmt
    accept = request.headers.get("Accept", "")
    if "application/json" not in accept:
        if "text/csv" in accept:
            return "csv"
        if "image/svg+xml" in accept:
            return "svg"
    return "json"


async def list_reports(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    return _json({"reports": [{"name": n, "title": reports.TITLES[n], "url": f"/api/v1/reports/{n}",
                               "chart": f"/api/v1/reports/{n}.svg"} for n in reports.REPORTS]})


async def _report(request: web.Request, suffix: str | None) -> web.Response:
    principal(request, *AGENTS)
    name = request.match_info["name"]
    fmt = _format(request, suffix)
    q = request.query
    rng = reports.parse_range(q.get("from"), q.get("to"), q.get("tz"))
    report = await db(reports.run, request.app[ENGINE], name, rng)
    filename = f"{name}-{rng.start.isoformat()}-{rng.end.isoformat()}"
    if fmt == "csv":
        return web.Response(text=reports.to_csv(report), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'})
    if fmt == "svg":
        svg = await db(reports.to_svg, report)
        return web.Response(text=svg, content_type="image/svg+xml", charset="utf-8", headers={
            # Opened on its own the chart is a document: it may style itself, nothing else.
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'",
            "Cache-Control": "private, max-age=60",
        })
    return _json(report)


async def get_report(request: web.Request) -> web.Response:
    return await _report(request, None)


async def get_report_svg(request: web.Request) -> web.Response:
    return await _report(request, "svg")


# --- privacy ----------------------------------------------------------------------------------------


async def get_export(request: web.Request) -> web.Response:
    who = principal(request, "admin")
    cid = path_id(request)
    data = await db(privacy.export_customer, request.app[ENGINE], cid, blobs=request.app[BLOBS], actor=who.actor)
    return web.Response(text=json.dumps(data, ensure_ascii=False, default=str), content_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="customer-{cid}-export.json"',
                                 "Cache-Control": "no-store"})


async def post_erase(request: web.Request) -> web.Response:
    who = principal(request, "admin")
    cid = path_id(request)
    body = await parse_body(request, EraseIn)
    if body.confirm != cid:
        raise RejectedInput("confirm must repeat the customer's id: erasing cannot be undone")
    result = await db(privacy.erase_customer, request.app[ENGINE], request.app[BLOBS], cid, who.actor, reason=body.reason,
                      outbound_log=request.app[SETTINGS].outbound_log)
    return _json(result)


# --- wiring ---------------------------------------------------------------------------------------


def setup(app: web.Application) -> None:
    """Add the routes to the app (no background work)."""
    from hub.web.inbox import privacy as privacy_pages
    from hub.web.inbox import reports as report_pages

    app.router.add_get("/api/v1/reports", list_reports)
    app.router.add_get(r"/api/v1/reports/{name:[a-z_]+}.svg", get_report_svg)
    app.router.add_get(r"/api/v1/reports/{name:[a-z_]+}", get_report)
    app.router.add_get("/api/v1/customers/{id}/export", get_export)
    app.router.add_post("/api/v1/customers/{id}/erase", post_erase)
    report_pages.add_routes(app)
    privacy_pages.add_routes(app)


def openapi_paths() -> dict:
    """This module's routes in the hub's OpenAPI document (hub/web/openapi.py merges them in)."""
    from hub.web.inbox import privacy as privacy_pages
    from hub.web.inbox import reports as report_pages
    from hub.web.openapi import _errors, _op, _path_id, _query
    from hub.web.openapi import _json as json_response

    auth_errors = _errors(401, 403)
    day = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "enum": list(reports.REPORTS)}}
    range_params = [
        _query("from", day, "first day, in tz (default: 27 days before `to`)"),
        _query("to", day, "last day, inclusive, in tz (default: today in tz)"),
        _query("tz", {"type": "string", "minLength": 1, "maxLength": 64}, "IANA time zone of the days (default UTC)"),
    ]
    svg = {"image/svg+xml": {"schema": {"type": "string"}}}
    report_ok = {
        "description": "the report: JSON, CSV (format=csv or Accept: text/csv) or an SVG chart (format=svg)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReportOut"}},
                    "text/csv": {"schema": {"type": "string"}}, **svg},
    }
    paths = {
        "/api/v1/reports": {
            "get": _op("The reports there are (agents)", {"200": json_response(ReportList), **auth_errors}, tags=["reports"])
        },
        "/api/v1/reports/{name}": {
            "get": _op(
                "A report over a range of days: volume, response_times, sla, csat, intents, out_of_stock (agents)",
                {"200": report_ok, **auth_errors, **_errors(404, 422)},
                params=[name, *range_params,
                        _query("format", {"type": "string", "enum": list(FORMATS)}, "json (default), csv or svg")],
                tags=["reports"],
            )
        },
        "/api/v1/reports/{name}.svg": {
            "get": _op("A report as an SVG chart (agents)",
                       {"200": {"description": "the chart", "content": svg}, **auth_errors, **_errors(404, 422)},
                       params=[name, *range_params], tags=["reports"])
        },
        "/api/v1/customers/{id}/export": {
            "get": _op("Everything held about one customer, as JSON (admin; audit-logged)",
                       {"200": json_response(CustomerExport), **auth_errors, **_errors(400, 404, 409)},
                       params=[_path_id()], tags=["privacy"])
        },
        "/api/v1/customers/{id}/erase": {
            "post": _op("Erase a customer: identities, messages, attachments and names removed, aggregate figures "
                        "kept (admin; audit-logged; cannot be undone)",
                        {"200": json_response(EraseOut), **auth_errors, **_errors(400, 404, 409, 413, 422)},
                        body=EraseIn, params=[_path_id()], tags=["privacy"])
        },
    }
    paths.update(report_pages.openapi_paths())
    paths.update(privacy_pages.openapi_paths())
    return paths
