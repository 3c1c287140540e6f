"""The customers' REST routes: a customer across channels, merging two, link codes and unlinking
an identity; the panel's changes (name, addresses, notes, attributes, tags) and the duplicate
suggestions. Thin: the work is in hub/customers."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from hub import conversations
from hub.customers import duplicates, linking, panel
from hub.customers import profiles as customers
from hub.web import openapi as doc
from hub.web import schemas as s
from hub.web.capability import ApiDoc, Capability
from hub.web.http import AGENTS, db, json_response, parse_body, path_id, principal
from hub.web.keys import ENGINE
from hub.web.schemas import Strict


class NameIn(Strict):
    name: str = Field(max_length=1000, description="the customer's name (empty: none)")


class AddressIn(Strict):
    kind: str = Field(max_length=16, description="email | phone (phone numbers with their country code, +44...)")
    address: str = Field(max_length=1000)


class NoteIn(Strict):
    text: str = Field(max_length=100_000, description="at most 10,000 characters once trimmed")


class AttributeIn(Strict):
    key: str = Field(max_length=1000)
    value: str = Field(max_length=10_000)


class TagIn(Strict):
    tag: str = Field(max_length=1000)


class CustomerPanelOut(Strict):
    id: int
    name: str | None
    notes: list[dict[str, Any]] = Field(description="newest first: id, agent_id, author, text, created_at")
    attributes: list[dict[str, Any]] = Field(description="key, value, updated_by, updated_at")
    tags: list[str]
    removable_identities: list[int] = Field(description="addresses nobody wrote from (an agent may remove them)")
    duplicates: list[dict[str, Any]] = Field(description="other customers that may be this one: customer_id, name, "
                                                         "reasons, merge_review")


def _panel_out(engine, customer_id: int) -> dict:
    profile = customers.get_customer(engine, customer_id)
    return {"id": customer_id, "name": profile["name"], **panel.panel(engine, customer_id),
            "duplicates": duplicates.suggestions(engine, customer_id)}


async def _changed(request: web.Request, fn, *args, status: int = 200) -> web.Response:
    who = principal(request, *AGENTS)
    customer_id = path_id(request)
    await db(fn, request.app[ENGINE], customer_id, *args, who)
    return json_response(await db(_panel_out, request.app[ENGINE], customer_id), status=status)


async def get_panel(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    return json_response(await db(_panel_out, request.app[ENGINE], path_id(request)))


async def rename(request: web.Request) -> web.Response:
    body = await parse_body(request, NameIn)
    return await _changed(request, panel.rename, body.name)


async def add_address(request: web.Request) -> web.Response:
    body = await parse_body(request, AddressIn)
    return await _changed(request, panel.add_identity, body.kind, body.address, status=201)


async def remove_address(request: web.Request) -> web.Response:
    return await _changed(request, panel.remove_identity, path_id(request, "identity_id"))


async def add_note(request: web.Request) -> web.Response:
    body = await parse_body(request, NoteIn)
    return await _changed(request, panel.add_note, body.text, status=201)


async def delete_note(request: web.Request) -> web.Response:
    return await _changed(request, panel.delete_note, path_id(request, "note_id"))


async def set_attribute(request: web.Request) -> web.Response:
    body = await parse_body(request, AttributeIn)
    return await _changed(request, panel.set_attribute, body.key, body.value)


async def remove_attribute(request: web.Request) -> web.Response:
    return await _changed(request, panel.remove_attribute, request.match_info["key"])


async def add_tag(request: web.Request) -> web.Response:
    body = await parse_body(request, TagIn)
    return await _changed(request, panel.add_tag, body.tag, status=201)


async def remove_tag(request: web.Request) -> web.Response:
    return await _changed(request, panel.remove_tag, request.match_info["tag"])


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
    app.router.add_patch("/api/v1/customers/{id}", rename)
    app.router.add_get("/api/v1/customers/{id}/panel", get_panel)
    app.router.add_post("/api/v1/customers/{id}/addresses", add_address)
    app.router.add_delete("/api/v1/customers/{id}/addresses/{identity_id}", remove_address)
    app.router.add_post("/api/v1/customers/{id}/notes", add_note)
    app.router.add_delete("/api/v1/customers/{id}/notes/{note_id}", delete_note)
    app.router.add_post("/api/v1/customers/{id}/attributes", set_attribute)
    app.router.add_delete("/api/v1/customers/{id}/attributes/{key}", remove_attribute)
    app.router.add_post("/api/v1/customers/{id}/tags", add_tag)
    app.router.add_delete("/api/v1/customers/{id}/tags/{tag}", remove_tag)


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
    out = doc.json_response(CustomerPanelOut)
    changed = {"200": out, **auth_errors, **doc.errors(400, 404, 409, 413, 422)}
    created = {"201": out, **auth_errors, **doc.errors(400, 404, 409, 413, 422)}
    removed = {"200": out, **auth_errors, **doc.errors(400, 404, 409, 422)}
    text_param = lambda name: {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}  # noqa: E731
    paths["/api/v1/customers/{id}"]["patch"] = doc.op("Rename the customer (audit-logged)", changed, body=NameIn,
                                                      params=[doc.path_id()], tags=tags)
    paths.update({
        "/api/v1/customers/{id}/panel": {
            "get": doc.op("What agents keep on the customer (notes, attributes, tags) and the duplicate suggestions",
                          {"200": out, **auth_errors, **doc.errors(400, 404)}, params=[doc.path_id()], tags=tags)},
        "/api/v1/customers/{id}/addresses": {
            "post": doc.op("Add an email address or phone number the customer can be reached on (unverified); 409 "
                           "address_taken when another customer has it, with that customer in error.detail",
                           created, body=AddressIn, params=[doc.path_id()], tags=tags)},
        "/api/v1/customers/{id}/addresses/{identity_id}": {
            "delete": doc.op("Remove an address nobody wrote from", removed,
                             params=[doc.path_id(), doc.path_id("identity_id")], tags=tags)},
        "/api/v1/customers/{id}/notes": {
            "post": doc.op("Add a note about the customer", created, body=NoteIn, params=[doc.path_id()], tags=tags)},
        "/api/v1/customers/{id}/notes/{note_id}": {
            "delete": doc.op("Delete a note (its author or an admin)", removed,
                             params=[doc.path_id(), doc.path_id("note_id")], tags=tags)},
        "/api/v1/customers/{id}/attributes": {
            "post": doc.op("Set an attribute (key: value)", changed, body=AttributeIn, params=[doc.path_id()], tags=tags)},
        "/api/v1/customers/{id}/attributes/{key}": {
            "delete": doc.op("Remove an attribute", removed, params=[doc.path_id(), text_param("key")], tags=tags)},
        "/api/v1/customers/{id}/tags": {
            "post": doc.op("Tag the customer", created, body=TagIn, params=[doc.path_id()], tags=tags)},
        "/api/v1/customers/{id}/tags/{tag}": {
            "delete": doc.op("Remove a tag", removed, params=[doc.path_id(), text_param("tag")], tags=tags)},
    })
    return ApiDoc(paths, [s.MergeIn, s.CustomerOut, s.LinkCodeOut, NameIn, AddressIn, NoteIn, AttributeIn, TagIn,
                          CustomerPanelOut])


capability = Capability("customers", routes=add_routes, openapi=openapi)
