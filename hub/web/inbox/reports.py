"""The reports page of the inbox: every report of hub/reports/queries.py over a range of days,
as a chart (the SVG of GET /api/v1/reports/{name}.svg, shown with <img>: no script on the page),
a table, and a CSV download link. For every signed-in agent."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from aiohttp import web

from hub.contract.i18n import gettext
from hub.reports import labels
from hub.reports import queries as reports
from hub.web.inbox.common import CSRF_FIELD, agent, page, render
from hub.web.keys import ENGINE


@page
async def reports_page(request: web.Request) -> web.Response:
    who = agent(request)
    q = request.query
    rng = reports.parse_range(q.get("from"), q.get("to"), q.get("tz"))
    engine = request.app[ENGINE]
    found = await asyncio.to_thread(lambda: [reports.run(engine, name, rng) for name in reports.REPORTS])
    query = urlencode({"from": rng.start.isoformat(), "to": rng.end.isoformat(), "tz": rng.tz.key})
    return render(request, "reports.html", {
        "who": who, "csrf": who.csrf_token, "csrf_field": CSRF_FIELD, "range": rng, "query": query,
        "reports": found, "tables": {r["report"]: _translated(labels.table(r)) for r in found},
    })


def _translated(table: dict) -> dict:
    # Not in the template: a label may hold a "%" ("Satisfied, %"), which Jinja's gettext would
    # take for a placeholder.
    return {**table, "headers": [gettext(h) for h in table["headers"]]}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/inbox/reports", reports_page)


def openapi_paths() -> dict:
    text = {"type": "string"}

    def q(name: str, description: str) -> dict:
        return {"name": name, "in": "query", "required": False, "schema": text, "description": description}

    html = {"content": {"text/html": {"schema": text}}}
    return {"/inbox/reports": {"get": {
        "summary": "Reports: charts, tables and CSV downloads over a range of days", "tags": ["inbox"],
        "security": [{"session": []}],
        "parameters": [q("from", "first day (YYYY-MM-DD)"), q("to", "last day (YYYY-MM-DD)"), q("tz", "IANA time zone")],
        "responses": {"200": {"description": "the reports page", **html},
                      "303": {"description": "to the sign-in page (no session)",
                              "headers": {"Location": {"schema": text}}},
                      "403": {"description": "not an agent", **html},
                      "422": {"description": "a bad range; the page says why", **html}},
    }}}
