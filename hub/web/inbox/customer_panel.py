"""The customer panel's changes from the inbox: name, addresses, notes, attributes, tags; the
duplicate suggestions; the @mention autocomplete's list of agents; the agent's notifications.

One form route per panel (POST /inbox/customers/{id}/edit, the change named by `action`). Without
JavaScript it posts and redirects back; the panel's script (static/customer.js) posts the same form
with fetch and `X-Panel: 1`, and gets the panel's HTML back to swap in place (or the error as JSON,
with the merge review's link when the address belongs to another customer). The logic is in
hub/customers/panel.py, duplicates.py and hub/notifications.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from hub.auth import accounts as auth
from hub.contract.errors import HubError, RejectedInput
from hub.contract.i18n import gettext as _
from hub.conversations import mentions
from hub.customers import duplicates, panel
from hub.customers import profiles as customers
from hub.notifications import store as notifications
from hub.scm import customer_orders
from hub.web.inbox.common import CSRF_FIELD, agent, form_of, int_param, json_error, page, render
from hub.web.inbox.words import notifications_shown
from hub.web.keys import ENGINE, SCM_SERVICES


async def db(fn, *args, **kwargs):
    return await asyncio.to_thread(fn, *args, **kwargs)


def extras(engine, customer_id: int) -> dict:
    """What the panel shows beyond the profile: what agents keep on the customer, and the
    duplicate suggestions."""
    return {**panel.panel(engine, customer_id), "duplicates": duplicates.suggestions(engine, customer_id)}


def full_profile(engine, customer_id: int) -> dict:
    """The customer as the panel shows it: profile, extras, orders asked about."""
    profile = customers.get_customer(engine, customer_id)
    profile.update(extras(engine, customer_id))
    profile["orders"] = customer_orders.known_orders(engine, customer_id)
    return profile


async def backend_orders(request: web.Request, customer_id: int) -> dict:
    services = request.app.get(SCM_SERVICES)
    backend = services.backend if services is not None else None
    return await customer_orders.backend_orders(request.app[ENGINE], backend, customer_id)


def _apply(engine, customer_id: int, form, who: auth.Principal) -> None:
    action = str(form.get("action") or "")

    def field(name: str) -> str:
        value = form.get(name)
        if value is None or not isinstance(value, str):
            raise RejectedInput(_("the form needs %(field)s") % {"field": name})
        return value

    if action == "rename":
        panel.rename(engine, customer_id, field("name"), who)
    elif action == "add_address":
        panel.add_identity(engine, customer_id, field("kind"), field("address"), who)
    elif action == "remove_address":
        panel.remove_identity(engine, customer_id, int_param(form.get("identity_id"), "identity_id"), who)
    elif action == "note":
        panel.add_note(engine, customer_id, field("text"), who)
    elif action == "delete_note":
        panel.delete_note(engine, customer_id, int_param(form.get("note_id"), "note_id"), who)
    elif action == "attribute":
        panel.set_attribute(engine, customer_id, field("key"), field("value"), who)
    elif action == "remove_attribute":
        panel.remove_attribute(engine, customer_id, field("key"), who)
    elif action == "tag":
        panel.add_tag(engine, customer_id, field("tag"), who)
    elif action == "untag":
        panel.remove_tag(engine, customer_id, field("tag"), who)
    else:
        raise RejectedInput(_("action must be one of: rename, add_address, remove_address, note, delete_note, attribute, "
                            "remove_attribute, tag, untag"))


def _from_script(request: web.Request) -> bool:
    return request.headers.get("X-Panel") == "1"


async def _panel_fragment(request: web.Request, who, customer_id: int, conversation_id: int | None) -> web.Response:
    engine = request.app[ENGINE]
    profile = await db(full_profile, engine, customer_id)
    profile["backend_orders"] = await backend_orders(request, customer_id)
    ctx = {"who": who, "csrf": who.csrf_token, "csrf_field": CSRF_FIELD, "customer": profile}
    if conversation_id is not None:
        ctx["conv"] = {"id": conversation_id}
    return render(request, "_customer.html", ctx)


@page
async def edit(request: web.Request) -> web.Response:
    """POST /inbox/customers/{id}/edit: one change to the customer (the form's `action`)."""
    who = agent(request)
    customer_id = int_param(request.match_info["id"], "customer id")
    try:
        form = await form_of(request, who)
        raw_conv = form.get("conversation")
        conversation_id = int_param(raw_conv, "conversation") if raw_conv else None
        await db(_apply, request.app[ENGINE], customer_id, form, who)
    except HubError as exc:
        if _from_script(request):
            return json_error(exc)
        if isinstance(exc, panel.AddressTaken):
            return await _customer_page(request, who, customer_id, problem=exc, status=409)
        raise
    if _from_script(request):
        return await _panel_fragment(request, who, customer_id, conversation_id)
    back = f"/inbox/c/{conversation_id}" if conversation_id else f"/inbox/customers/{customer_id}"
    raise web.HTTPSeeOther(back + "#cust-title")


async def _customer_page(request, who, customer_id: int, *, problem: HubError | None = None, status: int = 200):
    engine = request.app[ENGINE]
    profile = await db(full_profile, engine, customer_id)
    profile["backend_orders"] = await backend_orders(request, customer_id)
    return render(request, "customer.html", {"who": who, "csrf": who.csrf_token, "csrf_field": CSRF_FIELD,
                                             "customer": profile, "problem": problem}, status=status)


@page
async def customer(request: web.Request) -> web.Response:
    """GET /inbox/customers/{id}: the customer's page, with the editable panel."""
    who = agent(request)
    return await _customer_page(request, who, int_param(request.match_info["id"], "customer id"))


@page
async def people(request: web.Request) -> web.Response:
    """GET /inbox/people?q=mi: active agents whose name starts so (the @mention autocomplete)."""
    agent(request)
    q = request.query.get("q", "")[:100]
    return web.json_response({"people": await db(mentions.people, request.app[ENGINE], q)},
                             headers={"Cache-Control": "no-store"})


@page
async def my_notifications(request: web.Request) -> web.Response:
    """GET /inbox/notifications: the signed-in agent's notifications (JSON for the bell)."""
    who = agent(request)
    return web.json_response(notifications_shown(await db(notifications.list_for, request.app[ENGINE], who.id, limit=20)),
                             headers={"Cache-Control": "no-store"})


@page
async def mark_read(request: web.Request) -> web.Response:
    """POST /inbox/notifications/read (id=..., or none for all): marked read; JSON for the script,
    else back to where the agent was (or to the notification's conversation: `go`)."""
    who = agent(request)
    form = await form_of(request, who)
    ids = [int_param(v, "id") for v in form.getall("id", [])]
    try:
        await db(notifications.mark_read, request.app[ENGINE], who.id, ids or None)
    except HubError as exc:
        if "application/json" in request.headers.get("Accept", ""):
            return json_error(exc)
        raise
    if "application/json" in request.headers.get("Accept", ""):
        return web.json_response(notifications_shown(await db(notifications.list_for, request.app[ENGINE], who.id, limit=20)),
                                 headers={"Cache-Control": "no-store"})
    go = form.get("go")
    target = f"/inbox/c/{int_param(go, 'go')}" if go else "/inbox"
    raise web.HTTPSeeOther(target)


@page
async def notifications_page(request: web.Request) -> web.Response:
    """GET /inbox/notifications/all: the list as a page (the bell's link without JavaScript)."""
    who = agent(request)
    data = notifications_shown(await db(notifications.list_for, request.app[ENGINE], who.id, limit=100))
    return render(request, "notifications.html", {"who": who, "csrf": who.csrf_token, "csrf_field": CSRF_FIELD, **data})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/inbox/customers/{id}", customer)
    r.add_post("/inbox/customers/{id}/edit", edit)
    r.add_get("/inbox/people", people)
    r.add_get("/inbox/notifications", my_notifications)
    r.add_get("/inbox/notifications/all", notifications_page)
    r.add_post("/inbox/notifications/read", mark_read)


def openapi_paths(page, action, ident, q) -> dict:
    """These routes in the inbox's part of the OpenAPI document (hub/web/inbox/__init__.py)."""
    json_ok = {"description": "JSON for the page's script", "content": {"application/json": {"schema": {"type": "object"}}}}
    people_page = page("Agents by name prefix, for the @mention autocomplete (JSON)", query=[q("q", "a name's first letters")])
    people_page["get"]["responses"]["200"] = json_ok
    mine = page("My notifications and the unread count (JSON)")
    mine["get"]["responses"]["200"] = json_ok
    read = action("Mark my notifications read (id=..., none for all)")
    read["post"]["responses"]["200"] = json_ok
    return {
        "/inbox/customers/{id}/edit": action("Change the customer: name, addresses, notes, attributes, tags (action=...)",
                                             params=[ident]),
        "/inbox/people": people_page,
        "/inbox/notifications": mine,
        "/inbox/notifications/all": page("My notifications (page)"),
        "/inbox/notifications/read": read,
    }
