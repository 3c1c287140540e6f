"""Link codes from the customer's page: issue one (shown once), and take off an identity a code
attached (hub/customers/linking.py). Both audit-logged there."""

from __future__ import annotations

import asyncio

from aiohttp import web

from hub.customers import linking
from hub.web.inbox.common import CSRF_FIELD, agent, form_of, int_param, page, render
from hub.web.keys import ENGINE


@page
async def issue(request: web.Request) -> web.Response:
    who = agent(request)
    customer_id = int_param(request.match_info["id"], "customer id")
    await form_of(request, who)
    code, expires = await asyncio.to_thread(linking.issue_code, request.app[ENGINE], customer_id, actor=who.actor)
    # Shown once, on this page (not in a URL, which would keep it in the history and logs).
    return render(request, "link_code.html", {"who": who, "csrf": who.csrf_token, "csrf_field": CSRF_FIELD,
                                              "customer_id": customer_id, "code": code, "expires_at": expires}, status=201)


@page
async def unlink(request: web.Request) -> web.Response:
    who = agent(request)
    customer_id = int_param(request.match_info["id"], "customer id")
    identity_id = int_param(request.match_info["identity_id"], "identity id")
    await form_of(request, who)
    await asyncio.to_thread(linking.unlink_identity, request.app[ENGINE], customer_id, identity_id, who)
    raise web.HTTPSeeOther(f"/inbox/customers/{customer_id}")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/inbox/customers/{id}/link-codes", issue)
    app.router.add_post("/inbox/customers/{id}/identities/{identity_id}/unlink", unlink)
