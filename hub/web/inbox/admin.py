"""Admin pages: agents (create, role, deactivate, new password), API tokens (created and shown
once, revoked), channel status, canned responses (macros), and links to the knowledge base and
the web forms. Every page and form needs the admin role."""

from __future__ import annotations

import asyncio

from aiohttp import web

from hub.assignment import rules as assignment
from hub.auth import accounts as auth
from hub.auth import lockout, staff
from hub.contract.errors import PermissionDenied, RejectedInput
from hub.contract.i18n import gettext as _
from hub.conversations import macros
from hub.gateway.status import channel_status
from hub.store.search_text import search_text
from hub.web.inbox.common import CSRF_FIELD, agent, form_of, int_param, page, render, said
from hub.web.keys import ENGINE, REGISTRY, SETTINGS


async def db(fn, *args, **kwargs):
    return await asyncio.to_thread(fn, *args, **kwargs)


def _ctx(who, section: str, **extra) -> dict:
    return {"who": who, "csrf": who.csrf_token, "csrf_field": CSRF_FIELD, "section": section, **extra}


@page
async def index(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/inbox/admin/agents")


@page
async def agents(request: web.Request) -> web.Response:
    who = agent(request, admin=True)
    engine = request.app[ENGINE]
    return render(request, "admin/agents.html", _ctx(
        who, "agents", agents=await db(staff.list_agents, engine), locked=await db(lockout.locked_accounts, engine),
        done=request.query.get("done"), teams=await db(assignment.list_teams, engine),
        teams_of=await db(assignment.teams_of_agents, engine), availability=await db(assignment.availability_of, engine)))


@page
async def agents_post(request: web.Request) -> web.Response:
    who = agent(request, admin=True)
    form = await form_of(request, who)
    engine = request.app[ENGINE]
    action = form.get("action")
    if action == "create":
        await db(auth.create_agent, engine, str(form.get("email") or ""), str(form.get("password") or ""),
                 role=str(form.get("role") or "agent"), name=str(form.get("name") or "").strip() or None, actor=who.actor)
        done = "created"
    elif action == "role":
        await db(staff.set_role, engine, int_param(form.get("agent_id"), "agent_id"), str(form.get("role") or ""), who)
        done = "role"
    elif action in ("deactivate", "activate"):
        await db(staff.set_active, engine, int_param(form.get("agent_id"), "agent_id"), action == "activate", who)
        done = action
    elif action == "password":
        email = await db(staff.agent_email, engine, int_param(form.get("agent_id"), "agent_id"))
        await db(auth.set_password, engine, email, str(form.get("password") or ""), actor=who.actor)
        await db(lockout.clear, engine, email)  # a new password also lifts a lock-out
        done = "password"
    elif action == "availability":
        await db(assignment.set_availability, engine, int_param(form.get("agent_id"), "agent_id"),
                 form.get("available") == "true", who)
        done = "availability"
    elif action == "team_create":
        await db(assignment.create_team, engine, str(form.get("name") or ""), who)
        done = "team"
    elif action in ("team_add", "team_remove"):
        change = assignment.add_member if action == "team_add" else assignment.remove_member
        await db(change, engine, int_param(form.get("team_id"), "team_id"), int_param(form.get("agent_id"), "agent_id"), who)
        done = "team"
    else:
        raise RejectedInput(_("unknown action"))
    raise web.HTTPSeeOther(f"/inbox/admin/agents?done={done}")


@page
async def tokens(request: web.Request) -> web.Response:
    who = agent(request, admin=True)
    return render(request, "admin/tokens.html", _ctx(who, "tokens", tokens=await db(staff.list_tokens, request.app[ENGINE]),
                                                     new_token=None))


@page
async def tokens_post(request: web.Request) -> web.Response:
    who = agent(request, admin=True)
    form = await form_of(request, who)
    engine = request.app[ENGINE]
    if form.get("action") == "create":
        token = await db(auth.create_token, engine, str(form.get("name") or ""), role=str(form.get("role") or ""),
                         actor=who.actor)
        # Shown once, on this response (not a redirect: the token is never stored in plain).
        return render(request, "admin/tokens.html", _ctx(who, "tokens", tokens=await db(staff.list_tokens, engine),
                                                         new_token=token), status=201)
    if form.get("action") == "revoke":
        await db(staff.revoke_token, engine, int_param(form.get("token_id"), "token_id"), who)
        raise web.HTTPSeeOther("/inbox/admin/tokens")
    raise RejectedInput(_("unknown action"))


@page
async def channels(request: web.Request) -> web.Response:
    who = agent(request, admin=True)
    rows = await db(channel_status, request.app[ENGINE], request.app[REGISTRY])
    return render(request, "admin/channels.html", _ctx(who, "channels", channels=rows))


@page
async def macro_list(request: web.Request) -> web.Response:
    who = agent(request, admin=True)
    return render(request, "admin/macros.html", _ctx(who, "macros", macros=await db(macros.list_macros, request.app[ENGINE]),
                                                     placeholders=macros.PLACEHOLDERS))


@page
async def macro_post(request: web.Request) -> web.Response:
    who = agent(request, admin=True)
    form = await form_of(request, who)
    engine = request.app[ENGINE]
    action = form.get("action")
    name, body = str(form.get("name") or ""), str(form.get("body") or "")
    if action == "create":
        await db(macros.create_macro, engine, name, body, who)
    elif action == "update":
        await db(macros.update_macro, engine, int_param(form.get("macro_id"), "macro_id"), name, body, who)
    elif action == "delete":
        await db(macros.delete_macro, engine, int_param(form.get("macro_id"), "macro_id"), who)
    else:
        raise RejectedInput(_("unknown action"))
    raise web.HTTPSeeOther("/inbox/admin/macros")


@page
async def knowledge(request: web.Request) -> web.Response:
    # Agents too: they may propose drafts (the store decides who may publish).
    who = agent(request)
    from hub.kb import articles as kb
    from hub.kb import editor

    q = search_text(request.query.get("q"))
    articles = await db(kb.list_articles, request.app[ENGINE], q=q, limit=100)
    usage = await db(editor.usage, request.app[ENGINE], [a["id"] for a in articles["items"]])
    return render(request, "admin/kb.html", _ctx(who, "kb", articles=articles, q=q or "", usage=usage))


def _editor(request, who, article: dict | None, *, form=None, notice: str | None = None, error: str | None = None,
            status: int = 200, usage: dict | None = None) -> web.Response:
    from hub.kb import editor

    values = {"title": article["title"], "body": article["body"], "format": article["format"], "language": article["language"],
              "tags": ", ".join(article["tags"])} if article else {"title": "", "body": "", "format": "markdown",
                                                                     "language": "en", "tags": ""}
    if form is not None:  # what the agent typed stays on the page, also when it could not be saved
        values.update({k: str(form.get(k) or "") for k in ("title", "body", "format", "language", "tags")})
    preview = editor.render_markdown(values["body"], values["format"] if values["format"] in ("markdown", "text") else "markdown")
    return render(request, "admin/kb_edit.html", _ctx(
        who, "kb", article=article, values=values, preview=preview, notice=notice, error=error, usage=usage,
        is_admin=who.role == "admin"), status=status)


@page
async def article_new(request: web.Request) -> web.Response:
    return _editor(request, agent(request), None)


@page
async def article_edit(request: web.Request) -> web.Response:
    who = agent(request)
    from hub.kb import articles as kb
    from hub.kb import editor

    article_id = int_param(request.match_info["id"], "article id")
    article = await db(kb.get_article, request.app[ENGINE], article_id)
    usage = (await db(editor.usage, request.app[ENGINE], [article_id]))[article_id]
    notice = {"saved": _("Saved as a draft."), "published": _("Published: suggestions use it now."),
              "unpublished": _("Unpublished: it is a draft again and no longer suggested."),
              "created": _("Created.")}.get(request.query.get("done", ""))
    return _editor(request, who, article, notice=notice, usage=usage)


_WANTS = {"draft": False, "publish": True, "unpublish": False, "save": None}


@page
async def article_post(request: web.Request) -> web.Response:
    """Save (as it is), save as a draft, publish, unpublish, delete, or preview without saving."""
    who = agent(request)
    form = await form_of(request, who)
    from hub.kb import articles as kb
    from hub.kb import editor
    from hub.kb.routes import follow

    engine = request.app[ENGINE]
    raw_id = request.match_info.get("id")
    article_id = int_param(raw_id, "article id") if raw_id else None
    article = await db(kb.get_article, engine, article_id) if article_id else None
    action = str(form.get("action") or "save")
    if action == "preview":
        return _editor(request, who, article, form=form)
    if action == "delete" and article_id:
        await db(kb.delete_article, engine, article_id, who)
        await follow(request.app, article_id)
        raise web.HTTPSeeOther("/inbox/admin/kb?done=deleted")
    if action not in _WANTS:
        raise RejectedInput(_("unknown action"))
    published = _WANTS[action]
    if article is None and published is None:
        published = False  # a new article is a draft until someone publishes it
    try:
        fields = editor.fields_from_form(form, creating=article is None, published=published)
        chars = request.app[SETTINGS].kb.passage_chars
        if article is None:
            saved = await db(kb.create_article, engine, fields, who, max_chars=chars)
        else:
            saved = await db(kb.update_article, engine, article_id, fields, who, max_chars=chars)
    except (RejectedInput, PermissionDenied) as exc:
        # The page again with what was typed and why it was not saved: nothing the agent wrote is lost.
        status = 403 if isinstance(exc, PermissionDenied) else 422
        return _editor(request, who, article, form=form, error=said(exc), status=status)
    await follow(request.app, saved["id"])  # publishing indexes it at once
    done = {"publish": "published", "unpublish": "unpublished"}.get(action, "saved")
    raise web.HTTPSeeOther(f"/inbox/admin/kb/{saved['id']}?done={done}")


@page
async def article_preview(request: web.Request) -> web.Response:
    """The editor's live preview: the posted Markdown as the sanitised HTML the article will show."""
    who = agent(request)
    form = await form_of(request, who)
    from hub.kb import editor

    body = str(form.get("body") or "")
    if len(body) > 200_000:
        raise RejectedInput(_("the article is longer than 200,000 characters"))
    fmt = "text" if form.get("format") == "text" else "markdown"
    html = await db(editor.render_markdown, body, fmt)
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


@page
async def web_forms(request: web.Request) -> web.Response:
    who = agent(request, admin=True)
    forms = request.app[SETTINGS].forms
    return render(request, "admin/forms.html", _ctx(who, "forms", forms=forms))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/inbox/admin", index)
    r.add_get("/inbox/admin/agents", agents)
    r.add_post("/inbox/admin/agents", agents_post)
    r.add_get("/inbox/admin/tokens", tokens)
    r.add_post("/inbox/admin/tokens", tokens_post)
    r.add_get("/inbox/admin/channels", channels)
    r.add_get("/inbox/admin/macros", macro_list)
    r.add_post("/inbox/admin/macros", macro_post)
    r.add_get("/inbox/admin/kb", knowledge)
    r.add_get("/inbox/admin/kb/new", article_new)
    r.add_post("/inbox/admin/kb/new", article_post)
    r.add_post("/inbox/admin/kb/preview", article_preview)
    r.add_get("/inbox/admin/kb/{id:[^/]+}", article_edit)
    r.add_post("/inbox/admin/kb/{id:[^/]+}", article_post)
    r.add_get("/inbox/admin/forms", web_forms)
