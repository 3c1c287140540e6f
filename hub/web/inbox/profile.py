"""What an agent sets for themselves from the page header: the language of their inbox."""

from __future__ import annotations

from aiohttp import web

from hub.auth import profile
from hub.contract import i18n
from hub.web.http import SESSION_COOKIE
from hub.web.inbox.common import agent, form_of, page, safe_next
from hub.web.keys import AUTH, ENGINE


@page
async def post_language(request: web.Request) -> web.Response:
    """The header's language switch: stored on the agent, then back to the page it was pressed on
    (rendered again in the new language)."""
    who = agent(request)
    form = await form_of(request, who)
    code = profile.set_language(request.app[ENGINE], who.id, str(form.get("language") or ""))
    request.app[AUTH].forget(request.cookies.get(SESSION_COOKIE, ""))  # the cached principal holds the old one
    i18n.set_current(code)
    back = str(form.get("next") or "") or request.headers.get("Referer", "").partition(request.host)[2]
    raise web.HTTPSeeOther(safe_next(back or None))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/inbox/language", post_language)
