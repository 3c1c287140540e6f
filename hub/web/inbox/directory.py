"""The customer directory page: every customer, newest first, or those whose name or an address
holds a text; each links to the customer's page. A plain page with a search form and a next-page
link (it needs no script). The list itself is hub/customers/directory.py."""

from __future__ import annotations

import asyncio

from aiohttp import web

from hub.customers import directory
from hub.store.search_text import search_text
from hub.web.inbox.common import agent, page, render
from hub.web.keys import ENGINE


@page
async def customers_page(request: web.Request) -> web.Response:
    """GET /inbox/customers?q=&cursor=: the directory."""
    who = agent(request)
    q = search_text(request.query.get("q"))
    listing = await asyncio.to_thread(directory.list_customers, request.app[ENGINE], q,
                                      after=request.query.get("cursor") or None)
    return render(request, "customers.html", {"who": who, "csrf": who.csrf_token, "q": q or "", **listing})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/inbox/customers", customers_page)
