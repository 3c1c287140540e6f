"""The agent's pages: sign-in, the inbox list, a conversation with the customer's whole timeline,
and what agents do there (reply, note, assign, status, priority, retry a delivery, escalate).

Handlers are thin: every change is a plain function of hub/ (conversations, outbox, mentions,
read_marks, escalation...). Forms post and redirect (they work without JavaScript); the page's
script only adds live updates, the suggestion button and the collision notice.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import quote, urlencode

from aiohttp import web
from sqlalchemy import select

from hub import conversations
from hub.assignment import rules as assignment
from hub.auth import accounts as auth
from hub.auth import lockout, staff
from hub.contract.errors import HubError, RejectedInput, StaleVersion, Unauthenticated
from hub.contract.i18n import gettext as _
from hub.conversations import continuity, macros, mentions, read_marks, replies, timeline
from hub.conversations import inbox as inbox_list
from hub.customers import profiles as customers
from hub.outbox import queue as outbox
from hub.scm import customer_orders
from hub.sla import timers as sla
from hub.store.db import read_tx
from hub.store.models import Csat, Segment
from hub.web.changes import conversation_changed
from hub.web.http import SESSION_COOKIE, client_key
from hub.web.inbox import composer, customer_panel, list_actions
from hub.web.inbox import resolve as resolve_control
from hub.web.inbox.common import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    agent,
    form_of,
    int_param,
    json_error,
    login_csrf_ok,
    new_login_csrf,
    page,
    read_form,
    render,
    safe_next,
    said,
)
from hub.web.keys import AUTH, BLOBS, BROADCASTER, ENGINE, LOGIN_LIMITER, REGISTRY, SCM_SERVICES, SETTINGS, SLA_RULES, WORKER

log = logging.getLogger(__name__)


async def db(fn, *args, **kwargs):
    return await asyncio.to_thread(fn, *args, **kwargs)


def _base(who: auth.Principal) -> dict:
    return {"who": who, "csrf": who.csrf_token, "csrf_field": CSRF_FIELD}


# --- sign-in -------------------------------------------------------------------------------------


def _login_page(request, *, error: str | None = None, email: str = "", status: int = 200) -> web.Response:
    token = new_login_csrf()
    response = render(request, "login.html", {"error": error, "email": email, "login_csrf": token,
                                              "next": safe_next(request.query.get("next"))}, status=status)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/inbox/login",
                        secure=request.app[SETTINGS].cookie_secure, max_age=3600)
    return response


async def login_form(request: web.Request) -> web.Response:
    return _login_page(request)


@page
async def login(request: web.Request) -> web.Response:
    app = request.app
    form = await read_form(request)
    email = str(form.get("email") or "").strip()[:320]
    password = str(form.get("password") or "")
    if not login_csrf_ok(request, form.get(CSRF_FIELD) if isinstance(form.get(CSRF_FIELD), str) else None):
        return _login_page(request, error=_("The sign-in form was out of date; please try again."), email=email, status=403)
    wait = app[LOGIN_LIMITER].check(client_key(request))
    if wait:
        response = _login_page(request, error=_("Too many sign-in attempts from here; wait %(seconds)s seconds.") % {"seconds": int(wait) + 1},
                               email=email, status=429)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    engine = app[ENGINE]
    try:
        await db(lockout.check, engine, email)
        session = await db(auth.login, engine, email, password, days=app[SETTINGS].session_days)
    except lockout.AccountLocked as exc:
        response = _login_page(request, error=said(exc), email=email, status=429)
        response.headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
        return response
    except Unauthenticated as exc:
        if await db(lockout.record_failure, engine, email):
            msg = _("Wrong email or password. This account is now locked for 15 minutes after too many failed "
                    "sign-ins; an admin can unlock it by setting a new password.")
        elif isinstance(exc, auth.NotPlainAddress):
            msg = _("Wrong email or password. Type the address plainly: no <>, no final dot, no fullwidth or invisible characters.")
        else:
            msg = _("Wrong email or password.")
        return _login_page(request, error=msg, email=email, status=401)
    await db(lockout.clear, engine, email)
    response = web.HTTPSeeOther(safe_next(str(form.get("next") or "")))
    settings = app[SETTINGS]
    response.set_cookie(SESSION_COOKIE, session.token, max_age=int(settings.session_days * 86400), httponly=True,
                        secure=settings.cookie_secure, samesite="Lax", path="/")
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/inbox/login")
    raise response


@page
async def logout(request: web.Request) -> web.Response:
    who = agent(request)
    await form_of(request, who)
    token = request.cookies.get(SESSION_COOKIE, "")
    await db(auth.logout, request.app[ENGINE], token)
    request.app[AUTH].forget(token)
    response = web.HTTPSeeOther("/inbox/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


# --- the inbox list --------------------------------------------------------------------------------


def _list_context(request: web.Request, who) -> tuple[dict, inbox_list.InboxQuery]:
    channels = request.app[REGISTRY].names()
    iq = inbox_list.parse_query(request.query, channels)
    return {"channels": channels, "iq": iq}, iq


def _page_link(iq: inbox_list.InboxQuery, cursor: str) -> str:
    params = {k: v for k, v in {"view": iq.view, "channel": iq.channel, "status": iq.status, "q": iq.q,
                                "segment": iq.segment, "sort": iq.sort, "tag": iq.tag,
                                "within": iq.within if iq.within != "all" else None, "cursor": cursor}.items() if v}
    return "/inbox?" + urlencode(params)


async def _workspace_list(request: web.Request, who) -> dict:
    """The list pane's context: the view the URL names (a conversation's URL keeps the list's query)."""
    ctx, iq = _list_context(request, who)
    result = await db(inbox_list.list_inbox, request.app[ENGINE], who.id, iq)
    mentioned = await db(mentions.mentioning, request.app[ENGINE], who.id, limit=5)
    ctx.update(_base(who), rows=result["items"], mentioned=mentioned, views=inbox_list.VIEWS, sorts=inbox_list.SORTS,
               statuses=["open", "pending", "resolved", "closed"], segments=list(Segment.__members__),
               availability=await db(assignment.is_available, request.app[ENGINE], who.id),
               list_query=_list_query(iq),
               next_link=_page_link(iq, result["next_cursor"]) if result["next_cursor"] else None)
    ctx.update(await db(list_actions.list_tools, request.app[ENGINE], iq))
    return ctx


def _list_query(iq: inbox_list.InboxQuery) -> str:
    """The list's query string: what a conversation's URL carries so the list beside it stays the
    same view (and page), and what the page's script fetches the rows with when news comes."""
    params = {k: v for k, v in {"view": iq.view, "channel": iq.channel, "status": iq.status, "q": iq.q,
                                "segment": iq.segment, "sort": iq.sort if iq.sort != "activity" else None, "tag": iq.tag,
                                "within": iq.within if iq.within != "all" else None, "cursor": iq.cursor}.items() if v}
    return urlencode(params)


@page
async def inbox(request: web.Request) -> web.Response:
    who = agent(request)
    return render(request, "inbox.html", await _workspace_list(request, who))


@page
async def inbox_list_pane(request: web.Request) -> web.Response:
    """The list pane alone (views, filters, rows, next page): what the page's script swaps in when
    the agent picks another view, filter or page, beside the conversation that stays open."""
    who = agent(request)
    return render(request, "_list_pane.html", await _workspace_list(request, who))


@page
async def inbox_rows(request: web.Request) -> web.Response:
    """The list's rows alone: what the page fetches again when the live stream says something changed."""
    who = agent(request)
    ctx, iq = _list_context(request, who)
    result = await db(inbox_list.list_inbox, request.app[ENGINE], who.id, iq)
    return render(request, "_rows.html", {**ctx, "rows": result["items"]})


# --- a conversation ----------------------------------------------------------------------------------


def _suggestions(app, engine, conversation_id: int, who) -> dict:
    """The knowledge base's suggestions for the first render (hub.kb.suggestions); while its
    index loads, the page asks the JSON route again a little later."""
    from hub.kb import routes as kb_api

    index = app.get(kb_api.KB_INDEX)
    if index is None:
        return {"status": "unavailable", "suggestions": []}
    from hub.kb import suggestions
    from hub.kb.index import IndexNotReady

    if not index.ready or not index.embedder.ready:
        # Never hold the page while the model loads: the page's script asks the JSON route.
        return {"status": "loading", "suggestions": []}
    conf = app[SETTINGS].kb
    try:
        out = suggestions.suggest(engine, index, conversation_id, k=conf.suggestions, turns=conf.question_turns, who=who)
    except IndexNotReady:
        return {"status": "loading", "suggestions": []}
    except Exception:  # suggestions help; they must never take the conversation page down
        log.exception("suggestions for conversation %s failed", conversation_id)
        return {"status": "unavailable", "suggestions": []}
    whole = composer.passages(engine, [s["passage_id"] for s in out["suggestions"]])
    for s in out["suggestions"]:
        s["text"] = whole.get(s["passage_id"]) or composer.plain_text(s["snippet"])
    return out


def _facts(engine, conversation_id: int) -> dict | None:
    from hub.scm import autoanswer as routing

    try:
        return routing.conversation_facts(engine, conversation_id)
    except HubError:
        raise
    except Exception:
        log.exception("facts for conversation %s failed", conversation_id)
        return None


def _conversation_context(app, who, conversation_id: int, macro_id: int | None) -> dict:
    engine = app[ENGINE]
    conv = conversations.get_conversation(engine, conversation_id)
    read_marks.mark_read(engine, who.id, conversation_id)
    tl = timeline.customer_timeline(engine, conversation_id)
    customer = customers.get_customer(engine, conv["customer"]["id"])
    customer["orders"] = customer_orders.known_orders(engine, customer["id"])
    everyone = staff.list_agents(engine)
    agents = [a for a in everyone if a["active"]]
    me = next((a for a in agents if a["id"] == who.id), None)
    options = composer.reply_options(engine, conversation_id, customer["id"])
    draft = ""
    if macro_id is not None:
        m = macros.get_macro(engine, macro_id)
        draft = macros.render(m["body"], macros.values_for(conv, (me or {}).get("name") or who.name, who.name))
    first_words = next((" ".join(e["text"].split())[:80] for e in tl["entries"]
                        if e["conversation_id"] == conversation_id and e["kind"] == "inbound" and e["text"]), "")
    return {
        "conv": conv, "timeline": tl, "title": conv["subject"] or first_words or "No subject", "customer": customer,
        "agents": agents, "macros": macros.list_macros(engine), "draft": draft,
        # An assignee no longer active keeps an option of their own: the form then sends them back
        # unchanged, instead of "nobody" shown in their place.
        "former_assignee": next((a for a in everyone if a["id"] == conv["assignee_id"] and not a["active"]), None),
        "reply": options, "recipient": options["recipient"] or replies.reply_recipient(engine, conversation_id, said=said),
        "macro_choices": composer.macro_choices(engine, conv, (me or {}).get("name") or who.name, who.name),
        "suggest": _suggestions(app, engine, conversation_id, who),
        "facts": _facts(engine, conversation_id), "statuses": ["open", "pending", "resolved", "closed"],
        "priorities": ["low", "normal", "high", "urgent"],
        "sla": _sla_panel(sla.conversation_timers(engine, conversation_id, app[SLA_RULES])),
        "csat": _csat(engine, conversation_id),
        "availability": assignment.is_available(engine, who.id),
        "tag_editor": list_actions.tag_editor(engine, conversation_id),
    }


def _sla_panel(timers: dict) -> dict:
    """Each timer with a state (met / missed / overdue / warning / ok) and a short label."""
    from datetime import timedelta

    for key in ("first_response", "resolution"):
        t = timers.get(key)
        if not t:
            continue
        left = timedelta(seconds=t["remaining_business_seconds"])
        span = inbox_list.span(left)
        if not t["running"]:
            t["state"] = "met" if t["met"] else ("missed" if t["met"] is False else "stopped")
            t["label"] = {"met": _("met"), "missed": _("missed")}.get(t["state"], _("stopped"))
        elif t["breached"]:
            t["state"], t["label"] = "overdue", _("overdue by %(span)s business time") % {"span": span}
        else:
            t["state"] = "warning" if t["warning"] else "ok"
            t["label"] = _("%(span)s business time left") % {"span": span}
    return timers


def _csat(engine, conversation_id: int) -> dict | None:
    """The customer's survey answer, if they gave one (the latest, should there be several)."""
    csat_t = Csat.__table__
    with read_tx(engine) as conn:
        row = conn.execute(
            select(csat_t.c.score, csat_t.c.comment, csat_t.c.created_at)
            .where(csat_t.c.conversation_id == conversation_id).order_by(csat_t.c.id.desc()).limit(1)
        ).first()
    return None if row is None else {"score": row.score, "comment": row.comment, "created_at": row.created_at}


@page
async def conversation(request: web.Request) -> web.Response:
    """A conversation in the workspace: the list of the view the URL names beside it."""
    who = agent(request)
    cid = int_param(request.match_info["id"], "conversation id")
    raw_macro = request.query.get("macro")
    macro_id = int_param(raw_macro, "macro") if raw_macro else None
    return await _conversation_page(request, who, cid, macro_id)


@page
async def conversation_pane(request: web.Request) -> web.Response:
    """The conversation's panes alone: what the workspace's script puts beside the list."""
    who = agent(request)
    cid = int_param(request.match_info["id"], "conversation id")
    ctx = await _pane_context(request, who, cid)
    response = render(request, "conversation.html", ctx)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _pane_context(request: web.Request, who, cid: int, macro_id: int | None = None) -> dict:
    ctx = await db(_conversation_context, request.app, who, cid, macro_id)
    ctx["customer"]["backend_orders"] = await _backend_orders(request, ctx["customer"]["id"])
    ctx["customer"].update(await db(customer_panel.extras, request.app[ENGINE], ctx["customer"]["id"]))
    ctx["plan"], ctx["state"] = await db(resolve_control.plan, request.app[ENGINE], cid)
    ctx.update(_base(who), viewers=[v for v in request.app[BROADCASTER].presence.of(cid) if v["agent_id"] != who.id])
    return ctx


async def _conversation_page(request: web.Request, who, cid: int, macro_id: int | None = None, *,
                             notice: str | None = None, status: int = 200) -> web.Response:
    ctx = await _pane_context(request, who, cid, macro_id)
    ctx.update(await _workspace_list(request, who), fields_notice=notice)
    return render(request, "inbox.html", ctx, status=status)


@page
async def suggestions_fragment(request: web.Request) -> web.Response:
    """The suggestions panel alone: what the page asks again while the knowledge base loads."""
    who = agent(request)
    cid = int_param(request.match_info["id"], "conversation id")
    suggest = await db(_suggestions, request.app, request.app[ENGINE], cid, who)
    return render(request, "_suggestions.html", {**_base(who), "suggest": suggest})


async def _backend_orders(request: web.Request, customer_id: int) -> dict:
    """The customer's orders from the SCM back end, when this process reaches one (bounded wait)."""
    services = request.app.get(SCM_SERVICES)
    backend = services.backend if services is not None else None
    return await customer_orders.backend_orders(request.app[ENGINE], backend, customer_id)


@page
async def timeline_fragment(request: web.Request) -> web.Response:
    who = agent(request)
    cid = int_param(request.match_info["id"], "conversation id")
    engine = request.app[ENGINE]

    def load():
        conv = conversations.get_conversation(engine, cid)  # NotFound before anything is written
        read_marks.mark_read(engine, who.id, cid)
        return timeline.customer_timeline(engine, cid), conv, replies.reply_recipient(engine, cid, said=said)

    tl, conv, recipient = await db(load)
    return render(request, "_timeline.html", {**_base(who), "timeline": tl, "conv": conv, "recipient": recipient})


def _back(cid: int, anchor: str = "") -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/inbox/c/{cid}{anchor}")


async def _done(request: web.Request, cid: int, message_id: int) -> web.Response:
    """After a reply or a note: JSON for the page's script (it refreshes the timeline in place, and
    the side panel takes the conversation's new version, so a resolve right after is not refused as
    stale), a redirect to the message for a form posted without it."""
    if _wants_json(request):
        engine = request.app[ENGINE]
        state = side_state(await db(_state_now, engine, cid), await db(_agent_names, engine))
        return web.json_response({"conversation_id": cid, "message_id": message_id, "state": state}, status=201,
                                 headers={"Cache-Control": "no-store"})
    raise _back(cid, f"#m{message_id}")


def json_errors(handler):
    """A page action whose failures the page's script shows in place: JSON errors when it asks for
    JSON, the error page for a form posted without it."""
    wrapped = page(handler)

    async def answer(request: web.Request) -> web.Response:
        if not _wants_json(request):
            return await wrapped(request)
        try:
            return await handler(request)
        except HubError as exc:
            return json_error(exc)

    answer.__name__ = handler.__name__
    answer.__doc__ = handler.__doc__
    return answer


@json_errors
async def post_reply(request: web.Request) -> web.Response:
    who = agent(request)
    cid = int_param(request.match_info["id"], "conversation id")
    form = await form_of(request, who)
    text = str(form.get("text") or "")
    if len(text) > 100_000:
        raise RejectedInput(_("a reply can have at most 100,000 characters"))
    channel = str(form.get("channel") or "") or None
    message = await db(replies.reply, request.app[ENGINE], cid, who, text, blobs=request.app[BLOBS], channel=channel)
    request.app[WORKER].wake()
    conversation_changed(request.app, cid)
    return await _done(request, cid, message["id"])


@json_errors
async def post_note(request: web.Request) -> web.Response:
    who = agent(request)
    cid = int_param(request.match_info["id"], "conversation id")
    form = await form_of(request, who)
    text = str(form.get("text") or "")
    if len(text) > 100_000:
        raise RejectedInput(_("a note can have at most 100,000 characters"))
    note = await db(conversations.add_note, request.app[ENGINE], cid, who, text)
    conversation_changed(request.app, cid, moves_timers=False)
    return await _done(request, cid, note["id"])


# The side panel's form fields and the conversation's keys they change.
SIDE_FIELDS = (("status", "status"), ("priority", "priority"), ("assignee", "assignee_id"))


def _assignee_value(raw: str, who) -> int | None:
    if raw == "me":
        return who.id
    if raw in ("", "none"):
        return None
    return int_param(raw, "assignee")


def survey_choice(form) -> bool | None:
    """The resolve control's survey choice (hub/web/inbox/resolve.py): send, skip, or not said."""
    return {"send": True, "skip": False}.get(str(form.get("survey") or ""))


def _side_changes(form, who) -> dict:
    """The fields the agent changed: each sent value compared with the one the page was rendered
    with (was_<field>), so a form that posts every field changes only those the agent touched. A
    field sent without its was_ value (an older page, a script) counts as changed."""
    changes: dict = {}
    for field, key in SIDE_FIELDS:
        if field not in form or (field != "assignee" and not form[field]):
            continue
        read = (lambda raw: _assignee_value(str(raw), who)) if field == "assignee" else str
        value = read(form[field])
        was = form.get(f"was_{field}")
        if was is not None and read(was) == value:
            continue
        changes[key] = value
    return changes


def _agent_names(engine) -> dict[int, str]:
    return {a["id"]: a["name"] or a["email"] for a in staff.list_agents(engine)}


def side_state(conv: dict, names: dict[int, str]) -> dict:
    """What the side panel shows of a conversation, for the page's script."""
    return {"id": conv["id"], "version": conv["version"], "status": conv["status"], "priority": conv["priority"],
            "assignee_id": conv["assignee_id"], "assignee_name": names.get(conv["assignee_id"])}


def _conflict_message(state: dict, changes: dict, names: dict[int, str]) -> str:
    """What the agent is told when their change was made on a stale page: what they tried, and
    what the conversation holds now."""
    def shown(key: str, value) -> str:
        if key == "status":
            return _("status to %(value)s") % {"value": _(value)}
        if key == "priority":
            return _("priority to %(value)s") % {"value": _(value)}
        if key != "assignee_id":
            return f"{key} to {value}"
        return _("assignee to %(name)s") % {"name": _("nobody") if value is None else names.get(value, f"agent {value}")}

    tried = ", ".join(shown(k, v) for k, v in changes.items())
    now = _("status %(status)s, priority %(priority)s") % {"status": _(state["status"]), "priority": _(state["priority"])}
    now += ", " + (_("assigned to %(name)s") % {"name": state["assignee_name"]} if state["assignee_id"] else _("unassigned"))
    return _("Not saved: this conversation was changed after your page showed it, so your change (%(tried)s) was not "
             "applied. It is now: %(now)s. Make your change again if it still holds.") % {"tried": tried, "now": now}


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@page
async def post_update(request: web.Request) -> web.Response:
    """Status, priority and assignee from the conversation's side panel ("me" and "none" for the
    assignee): only the fields the agent changed, on the version the page showed. The page's
    script sends one field at a time and gets JSON back, errors included; the form without it
    posts them all and gets pages."""
    try:
        return await _update(request)
    except HubError as exc:
        if _wants_json(request):
            return json_error(exc)
        raise


async def _update(request: web.Request) -> web.Response:
    who = agent(request)
    cid = int_param(request.match_info["id"], "conversation id")
    form = await form_of(request, who)
    changes = _side_changes(form, who)
    raw_version = form.get("version")
    version = int_param(str(raw_version), "version") if raw_version not in (None, "") else None
    engine = request.app[ENGINE]
    try:
        if changes:
            conv = await db(conversations.update_conversation, engine, cid, changes, who, expected_version=version,
                            survey=survey_choice(form))
        else:
            conv = await db(_state_now, engine, cid)
    except StaleVersion as exc:
        names = await db(_agent_names, engine)
        state = side_state(exc.detail["conversation"], names)
        message = _conflict_message(state, changes, names)
        if _wants_json(request):
            return web.json_response({"error": {"code": exc.code, "message": message}, "state": state}, status=409,
                                     headers={"Cache-Control": "no-store"})
        return await _conversation_page(request, who, cid, notice=message, status=409)
    if changes:
        conversation_changed(request.app, cid)
    if _wants_json(request):
        state = side_state(conv, await db(_agent_names, engine))
        return web.json_response({"state": state}, headers={"Cache-Control": "no-store"})
    raise _back(cid)


@page
async def side_panel_state(request: web.Request) -> web.Response:
    """The side panel's values and version now: what the page's script shows after news."""
    agent(request)
    cid = int_param(request.match_info["id"], "conversation id")
    engine = request.app[ENGINE]
    conv = await db(_state_now, engine, cid)
    return web.json_response(side_state(conv, await db(_agent_names, engine)), headers={"Cache-Control": "no-store"})


def _state_now(engine, cid: int) -> dict:
    with read_tx(engine) as conn:
        return conversations.conversation_state(conn, cid)  # without its messages


@page
async def post_availability(request: web.Request) -> web.Response:
    """The header's toggle: whether automatic assignment gives me new conversations."""
    who = agent(request)
    form = await form_of(request, who)
    raw = str(form.get("available") or "")
    if raw not in ("true", "false"):
        raise RejectedInput(_("available must be true or false"))
    await db(assignment.set_availability, request.app[ENGINE], who.id, raw == "true", who)
    back = safe_next(request.headers.get("Referer", "").partition(request.host)[2] or None)
    raise web.HTTPSeeOther(back)


@page
async def post_retry(request: web.Request) -> web.Response:
    who = agent(request)
    message_id = int_param(request.match_info["id"], "message id")
    form = await form_of(request, who)
    cid = int_param(form.get("conversation_id"), "conversation_id")
    await db(outbox.retry_delivery, request.app[ENGINE], message_id)
    request.app[WORKER].wake()
    conversation_changed(request.app, cid, moves_timers=False)
    raise _back(cid, f"#m{message_id}")


@page
async def post_move(request: web.Request) -> web.Response:
    """A message in the wrong conversation of the customer goes to the right one."""
    who = agent(request)
    message_id = int_param(request.match_info["id"], "message id")
    form = await form_of(request, who)
    cid, to = int_param(form.get("conversation_id"), "conversation_id"), int_param(form.get("to"), "to")
    await db(continuity.move_message, request.app[ENGINE], message_id, to, who)
    conversation_changed(request.app, cid)
    conversation_changed(request.app, to)
    raise _back(to, f"#m{message_id}")


@page
async def post_merge(request: web.Request) -> web.Response:
    """Another conversation of the customer is the same matter: its messages come here."""
    who = agent(request)
    cid = int_param(request.match_info["id"], "conversation id")
    form = await form_of(request, who)
    source = int_param(form.get("source"), "source")
    await db(continuity.merge, request.app[ENGINE], source, cid, who)
    conversation_changed(request.app, cid)
    conversation_changed(request.app, source)
    raise _back(cid)


@page
async def post_undo(request: web.Request) -> web.Response:
    who = agent(request)
    event_id = int_param(request.match_info["id"], "event id")
    form = await form_of(request, who)
    cid = int_param(form.get("conversation_id"), "conversation_id")
    done = await db(continuity.undo, request.app[ENGINE], event_id, who)
    conversation_changed(request.app, done["target_id"])
    conversation_changed(request.app, done["source_id"])
    raise _back(cid)


@page
async def post_escalation(request: web.Request) -> web.Response:
    from hub.scm import escalation

    who = agent(request)
    cid = int_param(request.match_info["id"], "conversation id")
    form = await form_of(request, who)
    reason = str(form.get("reason") or "").strip()
    if not reason:
        raise RejectedInput(_("say why you escalate: the back office reads it"))
    target = escalation.escalation_target(request.app[SETTINGS], None)
    await db(escalation.escalate, request.app[ENGINE], cid, who, reason[:5000], target=target)
    request.app[WORKER].wake()
    conversation_changed(request.app, cid, moves_timers=False)
    raise _back(cid)


@page
async def download(request: web.Request) -> web.StreamResponse:
    """An attachment, always as a download: a file a customer sent never renders as a page of the hub."""
    agent(request)
    att = await db(timeline.attachment, request.app[ENGINE], int_param(request.match_info["id"], "attachment id"))
    path = request.app[BLOBS].path(att["sha256"])
    if not path.exists():
        raise RejectedInput(_("the file of this attachment is missing from the blob store"))
    name = att["filename"] or "attachment"
    ascii_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:100] or "attachment"
    return web.FileResponse(path, headers={
        "Content-Type": "application/octet-stream",
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}",
        "Content-Security-Policy": "sandbox",
        "Cache-Control": "private, no-store",
    })


# --- the customer -------------------------------------------------------------------------------------


@page
async def merge_confirm(request: web.Request) -> web.Response:
    """Both profiles side by side before an admin merges them: a wrong merge shows one customer's
    history to another."""
    who = agent(request, admin=True)
    target = int_param(request.match_info["id"], "customer id")
    other = int_param(request.query.get("other"), "the other customer's id")
    engine = request.app[ENGINE]
    a = await db(customers.get_customer, engine, target)
    b = await db(customers.get_customer, engine, other)
    return render(request, "merge.html", {**_base(who), "target": a, "source": b})


@page
async def merge(request: web.Request) -> web.Response:
    who = agent(request, admin=True)
    target = int_param(request.match_info["id"], "customer id")
    form = await form_of(request, who)
    if form.get("confirm") != "yes":
        raise RejectedInput(_("tick the confirmation to merge the two customers"))
    source = int_param(form.get("source"), "the other customer's id")
    await db(customers.merge_customers, request.app[ENGINE], target, source, who)
    raise web.HTTPSeeOther(f"/inbox/customers/{target}")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/inbox/login", login_form)
    r.add_post("/inbox/login", login)
    r.add_post("/inbox/logout", logout)
    r.add_get("/inbox", inbox)
    r.add_get("/inbox/rows", inbox_rows)
    r.add_get("/inbox/list", inbox_list_pane)
    r.add_get("/inbox/c/{id}", conversation)
    r.add_get("/inbox/c/{id}/timeline", timeline_fragment)
    r.add_get("/inbox/c/{id}/pane", conversation_pane)
    r.add_get("/inbox/c/{id}/recipient", composer.recipient_fragment)
    r.add_get("/inbox/c/{id}/suggestions", suggestions_fragment)
    r.add_post("/inbox/c/{id}/reply", post_reply)
    r.add_post("/inbox/c/{id}/note", post_note)
    r.add_post("/inbox/c/{id}/update", post_update)
    r.add_get("/inbox/c/{id}/state", side_panel_state)
    r.add_post("/inbox/c/{id}/escalate", post_escalation)
    r.add_post("/inbox/messages/{id}/retry", post_retry)
    r.add_post("/inbox/messages/{id}/move", post_move)
    r.add_post("/inbox/c/{id}/merge", post_merge)
    r.add_post("/inbox/events/{id}/undo", post_undo)
    r.add_get("/inbox/attachments/{id}", download)
    r.add_get("/inbox/customers/{id}/merge", merge_confirm)
    r.add_post("/inbox/availability", post_availability)
    r.add_post("/inbox/customers/{id}/merge", merge)
