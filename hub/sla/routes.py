"""SLA policies and timers, business-hours calendars, teams, agent availability and assignment: the
routes, and the worker that recomputes timers (woken by every change an agent makes)."""

from __future__ import annotations

import logging

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub import assignment
from hub.runtime.pacing import Pacer
from hub.runtime.workers import Worker
from hub.sla import timers as sla
from hub.web import openapi as doc
from hub.web.capability import ApiDoc, Capability
from hub.web.changes import ConversationChange
from hub.web.http import AGENTS, db, json_response, parse_body, path_id, principal
from hub.web.keys import CONVERSATION_LISTENERS, ENGINE, INGEST_METER, SETTINGS, SLA_RULES, SLA_WORKER, WORKER
from hub.web.process import elected

log = logging.getLogger(__name__)


# --- shapes -----------------------------------------------------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlaTimerOut(BaseModel):
    due_at: str
    running: bool
    met: bool | None = None
    breached: bool
    warning: bool
    remaining_business_seconds: int = Field(description="business time left until due (negative: overdue)")


class SlaEventOut(BaseModel):
    timer: str
    stage: str
    due_at: str
    at: str


class ConversationSlaOut(BaseModel):
    conversation_id: int
    policy: str | None = None
    sla_due_at: str | None = None
    first_response: SlaTimerOut | None = None
    resolution: SlaTimerOut | None = None
    events: list[SlaEventOut]


class TeamMemberOut(BaseModel):
    id: int
    email: str
    name: str | None = None


class TeamOut(BaseModel):
    id: int
    name: str
    members: list[TeamMemberOut]


class TeamList(BaseModel):
    items: list[TeamOut]


class TeamIn(Strict):
    name: str = Field(min_length=1, max_length=100)


class TeamMemberIn(Strict):
    agent_id: int = Field(ge=1, le=2147483647)


class AvailabilityIn(Strict):
    available: bool


class AvailabilityOut(BaseModel):
    agent_id: int
    available: bool


OPENAPI_MODELS: list = [ConversationSlaOut, TeamList, TeamOut, TeamIn, TeamMemberIn, AvailabilityIn, AvailabilityOut]


# --- handlers ---------------------------------------------------------------------------------------


async def get_sla(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    return json_response(await db(sla.conversation_timers, request.app[ENGINE], path_id(request), request.app[SLA_RULES]))


async def list_teams(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    return json_response({"items": await db(assignment.list_teams, request.app[ENGINE])})


async def post_team(request: web.Request) -> web.Response:
    who = principal(request, "admin")
    body = await parse_body(request, TeamIn)
    return json_response(await db(assignment.create_team, request.app[ENGINE], body.name, who), status=201)


async def post_member(request: web.Request) -> web.Response:
    who = principal(request, "admin")
    team_id = path_id(request)
    body = await parse_body(request, TeamMemberIn)
    await db(assignment.add_member, request.app[ENGINE], team_id, body.agent_id, who)
    return web.Response(status=204)


async def delete_member(request: web.Request) -> web.Response:
    who = principal(request, "admin")
    await db(assignment.remove_member, request.app[ENGINE], path_id(request), path_id(request, "agent_id"), who)
    return web.Response(status=204)


async def get_my_availability(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    available = await db(assignment.is_available, request.app[ENGINE], who.id)
    return json_response({"agent_id": who.id, "available": available})


async def put_my_availability(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    body = await parse_body(request, AvailabilityIn)
    return json_response(await db(assignment.set_availability, request.app[ENGINE], who.id, body.available, who))


async def put_availability(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)  # set_availability: yourself, or anyone as an admin
    agent_id = path_id(request)
    body = await parse_body(request, AvailabilityIn)
    return json_response(await db(assignment.set_availability, request.app[ENGINE], agent_id, body.available, who))


# --- wiring -----------------------------------------------------------------------------------------


def setup(app: web.Application) -> None:
    """The rules (a calendar or policy that cannot work stops the start here, naming the setting),
    and waking the worker after every change an agent makes, through whichever door."""
    settings = app[SETTINGS]
    target = None
    if settings.sla.escalate_on_breach:
        from hub.contract.errors import HubError
        from hub.scm import escalation_target

        try:
            target = escalation_target(settings)
        except HubError as exc:  # no back office configured: breaches are still noted, not escalated
            log.warning("sla.escalate_on_breach is on but cannot escalate: %s", exc)
    app[SLA_RULES] = sla.build_rules(settings.sla, escalation_target=target)
    app[SLA_WORKER] = None
    app[CONVERSATION_LISTENERS].append(_waker(app))


def _waker(app: web.Application):
    def on_change(change: ConversationChange) -> None:
        # A change that moves SLA timers (priority, status, a reply): recompute now, not at the next poll.
        worker = app[SLA_WORKER]
        if change.moves_timers and worker is not None:
            worker.wake()

    return on_change


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/conversations/{id}/sla", get_sla)
    app.router.add_get("/api/v1/teams", list_teams)
    app.router.add_post("/api/v1/teams", post_team)
    app.router.add_post("/api/v1/teams/{id}/members", post_member)
    app.router.add_delete("/api/v1/teams/{id}/members/{agent_id}", delete_member)
    app.router.add_get("/api/v1/agents/me/availability", get_my_availability)
    app.router.add_put("/api/v1/agents/me/availability", put_my_availability)
    app.router.add_put("/api/v1/agents/{id}/availability", put_availability)


def workers(app: web.Application) -> list[Worker]:
    settings = app[SETTINGS]
    # Like the outbox: with outbox_inline_worker off, another process does the background work.
    if not (settings.sla.enabled and settings.sla.worker and settings.outbox_inline_worker):
        return []
    worker = sla.SlaWorker(app[ENGINE], app[SLA_RULES], poll_seconds=settings.sla.poll_seconds,
                           batch=settings.sla.batch_size, on_change=app[WORKER].wake,
                           pacer=Pacer(app[INGEST_METER]))
    app[SLA_WORKER] = worker
    # One pass at a time among all the hub's processes: a pass moves a shared watermark, and
    # two would race to assign the same conversations and fire the same breaches.
    return [elected(app, "sla", Worker("sla-worker", worker.run))]


# --- the OpenAPI document ---------------------------------------------------------------------------


def openapi() -> ApiDoc:
    auth_errors = doc.errors(401, 403)
    no_content = {"description": "done"}
    paths = {
        "/api/v1/conversations/{id}/sla": {
            "get": doc.op(
                "The conversation's SLA timers: policy, due times, remaining business time, warned / breached, "
                "and the warnings and breaches that fired",
                {"200": doc.json_response(ConversationSlaOut), **auth_errors, **doc.errors(400, 404)},
                params=[doc.path_id()], tags=["sla"],
            )
        },
        "/api/v1/teams": {
            "get": doc.op("Teams and their members", {"200": doc.json_response(TeamList), **auth_errors}, tags=["sla"]),
            "post": doc.op(
                "Create a team (admin)",
                {"201": doc.json_response(TeamOut), **auth_errors, **doc.errors(400, 409, 413, 422)},
                body=TeamIn, tags=["sla"],
            ),
        },
        "/api/v1/teams/{id}/members": {
            "post": doc.op(
                "Add an agent to a team (admin); adding a member twice changes nothing",
                {"204": no_content, **auth_errors, **doc.errors(400, 404, 413, 422)},
                body=TeamMemberIn, params=[doc.path_id()], tags=["sla"],
            )
        },
        "/api/v1/teams/{id}/members/{agent_id}": {
            "delete": doc.op(
                "Remove an agent from a team (admin)",
                {"204": no_content, **auth_errors, **doc.errors(400, 404)},
                params=[doc.path_id(), doc.path_id("agent_id")], tags=["sla"],
            )
        },
        "/api/v1/agents/me/availability": {
            "get": doc.op("Whether I take new conversations", {"200": doc.json_response(AvailabilityOut), **auth_errors},
                       tags=["sla"]),
            "put": doc.op(
                "Set whether I take new conversations (automatic assignment skips unavailable agents)",
                {"200": doc.json_response(AvailabilityOut), **auth_errors, **doc.errors(400, 413, 422)},
                body=AvailabilityIn, tags=["sla"],
            ),
        },
        "/api/v1/agents/{id}/availability": {
            "put": doc.op(
                "Set an agent's availability (admin, or the agent themself)",
                {"200": doc.json_response(AvailabilityOut), **auth_errors, **doc.errors(400, 404, 413, 422)},
                body=AvailabilityIn, params=[doc.path_id()], tags=["sla"],
            )
        },
    }
    return ApiDoc(paths, OPENAPI_MODELS)


capability = Capability("sla", setup=setup, routes=add_routes, openapi=openapi, workers=workers, requires=("process",))
