"""Privacy requests over HTTP, for admins only: export everything held about a customer, and
erase a customer. Each one is written to the audit log (hub/privacy/requests.py). The inbox's
privacy page (hub/web/inbox/privacy.py) is registered here too, with the API it mirrors."""

from __future__ import annotations

import json

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.contract.errors import RejectedInput
from hub.privacy import requests as privacy
from hub.web import openapi as doc
from hub.web.capability import ApiDoc, Capability
from hub.web.http import MAX_ID, db, json_response, parse_body, path_id, principal
from hub.web.keys import BLOBS, ENGINE, SETTINGS


class EraseIn(BaseModel):
    """Erasing cannot be undone: the caller repeats the customer's id to confirm."""

    model_config = ConfigDict(extra="forbid")
    confirm: int = Field(description="the customer's id again, as confirmation", ge=1, le=MAX_ID)
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
    return json_response(result)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/customers/{id}/export", get_export)
    app.router.add_post("/api/v1/customers/{id}/erase", post_erase)


def openapi() -> ApiDoc:
    auth_errors = doc.errors(401, 403)
    paths = {
        "/api/v1/customers/{id}/export": {
            "get": doc.op("Everything held about one customer, as JSON (admin; audit-logged)",
                          {"200": doc.json_response(CustomerExport), **auth_errors, **doc.errors(400, 404, 409)},
                          params=[doc.path_id()], tags=["privacy"])
        },
        "/api/v1/customers/{id}/erase": {
            "post": doc.op("Erase a customer: identities, messages, attachments and names removed, aggregate figures "
                           "kept (admin; audit-logged; cannot be undone)",
                           {"200": doc.json_response(EraseOut), **auth_errors, **doc.errors(400, 404, 409, 413, 422)},
                           body=EraseIn, params=[doc.path_id()], tags=["privacy"])
        },
    }
    return ApiDoc(paths, [EraseIn, EraseOut, CustomerExport])


capability = Capability("privacy", routes=add_routes, openapi=openapi)
