"""Reports as JSON, CSV and SVG charts, for every agent (agent and admin); the inbox's reports
page (hub/web/inbox/reports.py) is registered here too, with the API it shows."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.contract.errors import RejectedInput
from hub.reports import queries as reports
from hub.web import openapi as doc
from hub.web.capability import ApiDoc, Capability
from hub.web.http import AGENTS, db, json_response, principal
from hub.web.keys import ENGINE

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


OPENAPI_MODELS: list = [ReportOut, ReportList]


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
    return json_response({"reports": [{"name": n, "title": reports.TITLES[n], "url": f"/api/v1/reports/{n}",
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
    return json_response(report)


async def get_report(request: web.Request) -> web.Response:
    return await _report(request, None)


async def get_report_svg(request: web.Request) -> web.Response:
    return await _report(request, "svg")


# --- wiring ---------------------------------------------------------------------------------------


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/reports", list_reports)
    app.router.add_get(r"/api/v1/reports/{name:[a-z_]+}.svg", get_report_svg)
    app.router.add_get(r"/api/v1/reports/{name:[a-z_]+}", get_report)


def openapi() -> ApiDoc:
    """The reports' API (the inbox shell mounts the reports page)."""
    auth_errors = doc.errors(401, 403)
    day = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "enum": list(reports.REPORTS)}}
    range_params = [
        doc.query("from", day, "first day, in tz (default: 27 days before `to`)"),
        doc.query("to", day, "last day, inclusive, in tz (default: today in tz)"),
        doc.query("tz", {"type": "string", "minLength": 1, "maxLength": 64}, "IANA time zone of the days (default UTC)"),
    ]
    svg = {"image/svg+xml": {"schema": {"type": "string"}}}
    report_ok = {
        "description": "the report: JSON, CSV (format=csv or Accept: text/csv) or an SVG chart (format=svg)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReportOut"}},
                    "text/csv": {"schema": {"type": "string"}}, **svg},
    }
    paths = {
        "/api/v1/reports": {
            "get": doc.op("The reports there are (agents)", {"200": doc.json_response(ReportList), **auth_errors}, tags=["reports"])
        },
        "/api/v1/reports/{name}": {
            "get": doc.op(
                "A report over a range of days: volume, response_times, sla, csat, intents, out_of_stock (agents)",
                {"200": report_ok, **auth_errors, **doc.errors(404, 422)},
                params=[name, *range_params,
                        doc.query("format", {"type": "string", "enum": list(FORMATS)}, "json (default), csv or svg")],
                tags=["reports"],
            )
        },
        "/api/v1/reports/{name}.svg": {
            "get": doc.op("A report as an SVG chart (agents)",
                       {"200": {"description": "the chart", "content": svg}, **auth_errors, **doc.errors(404, 422)},
                       params=[name, *range_params], tags=["reports"])
        },
    }
    return ApiDoc(paths, OPENAPI_MODELS)


capability = Capability("reports", routes=add_routes, openapi=openapi)
