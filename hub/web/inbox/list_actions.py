"""What agents do from the inbox list and a conversation's header besides the side panel: bulk
changes to the checked rows, tags, snooze. Thin: the work is hub/conversations' (bulk.py, tags.py,
snooze.py), the side effects follow every change as after the REST API's (hub/web/changes.py).
Forms post and redirect without JavaScript; the list's script (static/list.js) posts them with
fetch and asks for JSON.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from aiohttp import web

from hub.contract import clock
from hub.contract.errors import HubError, RejectedInput
from hub.contract.i18n import gettext as _
from hub.conversations import bulk, tags
from hub.conversations import snooze as snoozing
from hub.conversations.routes import changed_all
from hub.web.changes import conversation_changed
from hub.web.inbox.common import CSRF_FIELD, agent, form_of, int_param, json_error, page, render, safe_next, said
from hub.web.keys import ENGINE


async def db(fn, *args, **kwargs):
    return await asyncio.to_thread(fn, *args, **kwargs)


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _json_errors(handler):
    """A script asking for JSON gets its errors as JSON (status and message), a form a page."""
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except HubError as exc:
            if _wants_json(request):
                return json_error(exc)
            raise

    wrapped.__name__ = handler.__name__
    return page(wrapped)


def _back(form, fallback: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(safe_next(str(form.get("back") or "")) if form.get("back") else fallback)


def _until(form) -> object:
    return snoozing.snooze_until(str(form.get("until") or "") or None, str(form.get("preset") or "") or None, clock.now())


def _ids(form) -> list[int]:
    raw = form.getall("ids", []) if hasattr(form, "getall") else form.get("ids", [])
    if isinstance(raw, str):
        raw = raw.split(",")
    if len(raw) > bulk.MAX_BULK:
        raise RejectedInput(_("at most %(num)s conversations at once") % {"num": bulk.MAX_BULK})
    return [int_param(str(i).strip(), "conversation id") for i in raw if str(i).strip()]


@_json_errors
async def post_bulk(request: web.Request) -> web.Response:
    """The list's bulk bar: ids (the checked rows), action, and the action's assignee / tag /
    preset or until."""
    who = agent(request)
    form = await form_of(request, who)
    ids = _ids(form)
    action = str(form.get("action") or "")
    change = bulk.BulkChange(action)
    if action == "assign":
        raw = str(form.get("assignee") or "")
        assignee = who.id if raw == "me" else None if raw in ("", "none") else int_param(raw, "assignee")
        change = bulk.BulkChange(action, assignee_id=assignee)
    elif action in ("tag", "untag"):
        change = bulk.BulkChange(action, tag=str(form.get("tag") or ""))
    elif action == "snooze":
        change = bulk.BulkChange(action, until=_until(form))
    done = await db(bulk.apply, request.app[ENGINE], ids, change, who, said=said)
    changed_all(request.app, done, change)
    if _wants_json(request):
        return web.json_response(done, headers={"Cache-Control": "no-store"})
    raise _back(form, "/inbox")


def tag_editor(engine, conversation_id: int) -> dict:
    """What the tag editor partial (_tags.html) shows: the conversation's tags and the known ones."""
    return {"conversation_id": conversation_id, "tags": tags.conversation_tags(engine, conversation_id),
            "known": [t["tag"] for t in tags.known_tags(engine, limit=100)], "presets": snoozing.PRESETS}


@page
async def get_tags(request: web.Request) -> web.Response:
    """The tag editor alone (_tags.html), for the page's script or a frame that shows it."""
    who = agent(request)
    cid = int_param(request.match_info["id"], "conversation id")
    editor = await db(tag_editor, request.app[ENGINE], cid)
    return render(request, "_tags.html", {"who": who, "csrf": who.csrf_token, "csrf_field": CSRF_FIELD, "tag_editor": editor})


@_json_errors
async def post_tags(request: web.Request) -> web.Response:
    """Add a tag (tag=...), or take one off (remove=...)."""
    who = agent(request)
    cid = int_param(request.match_info["id"], "conversation id")
    form = await form_of(request, who)
    engine = request.app[ENGINE]
    if form.get("remove"):
        now = await db(tags.remove_tag, engine, cid, str(form["remove"]), who)
    else:
        now = await db(tags.add_tag, engine, cid, str(form.get("tag") or ""), who)
    conversation_changed(request.app, cid, moves_timers=False)
    if _wants_json(request):
        return web.json_response({"conversation_id": cid, "tags": now}, headers={"Cache-Control": "no-store"})
    raise _back(form, f"/inbox/c/{cid}")


@_json_errors
async def post_snooze(request: web.Request) -> web.Response:
    """Snooze until a preset or a time (the page's script sends the preset computed in the
    agent's own time zone as `until`)."""
    who = agent(request)
    cid = int_param(request.match_info["id"], "conversation id")
    form = await form_of(request, who)
    raw_version = form.get("version")
    version = int_param(str(raw_version), "version") if raw_version not in (None, "") else None
    conv = await db(snoozing.snooze, request.app[ENGINE], cid, _until(form), who, expected_version=version)
    conversation_changed(request.app, cid)
    if _wants_json(request):
        return web.json_response({"id": cid, "status": conv["status"], "snoozed_until": conv["snoozed_until"],
                                  "version": conv["version"]}, headers={"Cache-Control": "no-store"})
    raise _back(form, f"/inbox/c/{cid}")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/inbox/bulk", post_bulk)
    r.add_get("/inbox/c/{id}/tags", get_tags)
    r.add_post("/inbox/c/{id}/tags", post_tags)
    r.add_post("/inbox/c/{id}/snooze", post_snooze)


def list_tools(engine, iq) -> dict:
    """What the list's tools (_list_tools.html) need besides the rows: the search's scope links,
    the known tags, the agents to assign to, the snooze presets. Read in a worker thread."""
    from hub.auth import staff

    params = {k: v for k, v in {"view": iq.view, "channel": iq.channel, "status": iq.status, "q": iq.q,
                                "segment": iq.segment, "sort": iq.sort, "tag": iq.tag}.items() if v}
    return {
        "scope_all": "/inbox?" + urlencode(params),
        "scope_view": "/inbox?" + urlencode({**params, "within": "view"}),
        "known_tags": [t["tag"] for t in tags.known_tags(engine, limit=100)],
        "bulk_agents": [a for a in staff.list_agents(engine) if a["active"]],
        "snooze_presets": snoozing.PRESETS,
        "back": "/inbox?" + urlencode({**params, **({"within": "view"} if iq.within == "view" else {})}),
    }
