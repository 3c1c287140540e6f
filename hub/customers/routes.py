"""The customers' REST routes: a customer across channels, merging two, link codes and unlinking
an identity. Thin: the work is in hub/customers."""

from __future__ import annotations

from aiohttp import web

from hub.conversations import core as conversations
from hub.customers import linking
from hub.customers import profiles as customers
from hub.web import openapi as doc
from hub.web import schemas as s
from hub.web.capability import ApiDoc, Capability
from hub.web.http import AGENTS, db, json_response, parse_body, path_id, principal
from hub.web.keys import ENGINE


async def get_customer(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    return json_response(await db(customers.get_customer, request.app[ENGINE], path_id(request)))


async def merge_customer(request: web.Request) -> web.Response:
    who = principal(request, "admin")
    target = path_id(request)
    body = await parse_body(request, s.MergeIn)
    return json_response(await db(customers.merge_customers, request.app[ENGINE], target, body.customer_id, who))


async def issue_link_code(request: web.Request) -> web.Response:
    """A one-time code that links another channel to this customer (Telegram: /start CODE)."""
    who = principal(request, *AGENTS)
    customer_id = path_id(request)
    code, expires = await db(linking.issue_code, request.app[ENGINE], customer_id, actor=who.actor)
    return json_response({"code": code, "expires_at": conversations.iso(expires)}, status=201)


async def unlink_identity(request: web.Request) -> web.Response:
    """Take an identity a link code attached off the customer (hub.customers.linking.unlink_identity)."""
    who = principal(request, *AGENTS)
    customer_id, identity_id = path_id(request), path_id(request, "identity_id")
    await db(linking.unlink_identity, request.app[ENGINE], customer_id, identity_id, who)
    return json_response(await db(customers.get_customer, request.app[ENGINE], customer_id))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/customers/{id}", get_customer)
    app.router.add_post("/api/v1/customers/{id}/merge", merge_customer)
    app.router.add_post("/api/v1/customers/{id}/link-codes", issue_link_code)
    app.router.add_delete("/api/v1/customers/{id}/identities/{identity_id}", unlink_identity)


def openapi() -> ApiDoc:
    auth_errors = doc.errors(401, 403)
    tags = ["customers"]
    paths = {
        "/api/v1/customers/{id}": {
            "get": doc.op("A customer: identities and conversations across channels",
                          {"200": doc.json_response(s.CustomerOut), **auth_errors, **doc.errors(400, 404)},
                          params=[doc.path_id()], tags=tags)
        },
        "/api/v1/customers/{id}/merge": {
            "post": doc.op("Merge another customer into this one (admin)",
                           {"200": doc.json_response(s.CustomerOut), **auth_errors, **doc.errors(400, 404, 409, 413, 422)},
                           body=s.MergeIn, params=[doc.path_id()], tags=tags)
        },
        "/api/v1/customers/{id}/link-codes": {
            "post": doc.op("Issue a one-time code that links another channel to this customer",
                           {"201": doc.json_response(s.LinkCodeOut), **auth_errors, **doc.errors(400, 404)},
                           params=[doc.path_id()], tags=tags)
        },
        "/api/v1/customers/{id}/identities/{identity_id}": {
            "delete": doc.op("Take an identity a link code attached off the customer: it moves to a profile of its own "
                             "with the conversations only it wrote in (audit-logged)",
                             {"200": doc.json_response(s.CustomerOut), **auth_errors, **doc.errors(400, 404, 409)},
                             params=[doc.path_id(), doc.path_id("identity_id")], tags=tags)
        },
    }
    return ApiDoc(paths, [s.MergeIn, s.CustomerOut, s.LinkCodeOut])


capability = Capability("customers", routes=add_routes, openapi=openapi)
