"""The resolve control: what resolving a conversation will do about the customer's satisfaction
survey, said on the button before the agent presses it ("Resolve (sends a satisfaction survey to
chloe@example.com)"), with a way to skip it; a conversation no agent answered is resolved without
one unless the agent asks for it. The decision is hub/csat/surveys.py survey_on_resolve.

GET /inbox/c/{id}/resolve: the control as a fragment (?fragment=1, for the conversation page's
script to put in place and refresh after news) or as a small page of its own (without script). Its
form posts to /inbox/c/{id}/update with status=resolved and survey=send|skip (or nothing: the
default), on the version the page showed."""

from __future__ import annotations

import asyncio

from aiohttp import web

from hub.contract import i18n
from hub.conversations.queries import conversation_state
from hub.csat import surveys
from hub.store.db import read_tx
from hub.web.inbox.common import CSRF_FIELD, agent, int_param, page, render
from hub.web.keys import ENGINE


def plan(engine, conversation_id: int) -> tuple[dict, dict]:
    """(what resolving does about the survey, the conversation's state) for the control."""
    with read_tx(engine) as conn:
        state = conversation_state(conn, conversation_id)  # NotFound for an unknown id
        return surveys.survey_on_resolve(conn, conversation_id, said=i18n.fill), state


@page
async def resolve_control(request: web.Request) -> web.Response:
    who = agent(request)
    cid = int_param(request.match_info["id"], "conversation id")
    survey, state = await asyncio.to_thread(plan, request.app[ENGINE], cid)
    context = {"who": who, "csrf": who.csrf_token, "csrf_field": CSRF_FIELD, "plan": survey, "state": state, "cid": cid,
               "fragment": request.query.get("fragment") == "1"}
    return render(request, "_resolve.html" if context["fragment"] else "resolve.html", context)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/inbox/c/{id}/resolve", resolve_control)
