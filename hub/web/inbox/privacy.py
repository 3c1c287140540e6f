"""The privacy page of the inbox (admins): download everything held about a customer
(the JSON of GET /api/v1/customers/{id}/export) and erase the customer, confirmed by typing
the id again. Both are audit-logged by hub/privacy/requests.py."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy import func, select

from hub.contract.errors import NotFound, RejectedInput
from hub.contract.i18n import gettext as _
from hub.privacy import requests as privacy
from hub.store.db import read_tx
from hub.store.models import Conversation, Customer, Identity
from hub.web.inbox.common import CSRF_FIELD, agent, form_of, int_param, page, render
from hub.web.keys import BLOBS, ENGINE, SETTINGS


def _summary(engine, customer_id: int) -> dict:
    c, i, v = Customer.__table__, Identity.__table__, Conversation.__table__
    with read_tx(engine) as conn:
        row = conn.execute(select(c).where(c.c.id == customer_id)).first()
        if row is None:
            raise NotFound(_("customer %(id)s does not exist") % {"id": customer_id})
        identities = conn.execute(select(i.c.kind, i.c.address).where(i.c.customer_id == customer_id).order_by(i.c.id)).all()
        conversations = conn.execute(select(func.count()).select_from(v).where(v.c.customer_id == customer_id)).scalar_one()
    return {"id": row.id, "name": row.name, "segment": row.segment, "merged_into": row.merged_into,
            "identities": [dict(r._mapping) for r in identities], "conversations": conversations}


@page
async def privacy_page(request: web.Request) -> web.Response:
    who = agent(request, admin=True)
    cid = int_param(request.match_info["id"], "id")
    summary = await asyncio.to_thread(_summary, request.app[ENGINE], cid)
    return render(request, "privacy.html", {"who": who, "csrf": who.csrf_token, "csrf_field": CSRF_FIELD,
                                            "customer": summary, "done": request.query.get("done")})


@page
async def privacy_post(request: web.Request) -> web.Response:
    who = agent(request, admin=True)
    cid = int_param(request.match_info["id"], "id")
    form = await form_of(request, who)
    if str(form.get("confirm") or "").strip() != str(cid):
        raise RejectedInput(_("type the customer's id in the confirmation field: erasing cannot be undone"))
    reason = str(form.get("reason") or "").strip()[:500] or None
    await asyncio.to_thread(privacy.erase_customer, request.app[ENGINE], request.app[BLOBS], cid, who.actor, reason=reason,
                            outbound_log=request.app[SETTINGS].outbound_log)
    raise web.HTTPSeeOther(f"/inbox/customers/{cid}/privacy?done=erased")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/inbox/customers/{id}/privacy", privacy_page)
    app.router.add_post("/inbox/customers/{id}/privacy", privacy_post)


def openapi_paths() -> dict:
    text = {"type": "string"}
    html = {"content": {"text/html": {"schema": text}}}
    ident = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
    redirect = {"description": "to the sign-in page (no session), or back to the page after erasing",
                "headers": {"Location": {"schema": text}}}
    form = {"type": "object", "additionalProperties": True,
            "description": "confirm (the customer's id again), reason, and the CSRF token in _csrf"}
    errors = {str(code): {"description": why, **html} for code, why in (
        (403, "not an admin, or a missing or stale CSRF token"), (404, "no such customer"),
        (409, "the customer was merged into another"), (422, "the input cannot be accepted; the page says why"))}
    for code in ("400", "413"):
        errors[code] = {"description": "the request cannot be read or is too large",
                        "content": {"text/html": {"schema": text}, "text/plain": {"schema": text}}}
    security = [{"session": []}]
    return {"/inbox/customers/{id}/privacy": {
        "get": {"summary": "Privacy requests for a customer: export, erase (admin)", "tags": ["inbox"],
                "security": security, "parameters": [ident],
                "responses": {"200": {"description": "the page", **html}, "303": redirect,
                              **{k: v for k, v in errors.items() if k in ("403", "404", "422")}}},
        "post": {"summary": "Erase the customer (admin; cannot be undone)", "tags": ["inbox"], "security": security,
                 "parameters": [ident],
                 "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": form},
                                                               "multipart/form-data": {"schema": form}}},
                 "responses": {"303": redirect, **errors}},
    }}
