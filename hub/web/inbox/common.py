"""What every inbox page shares: the template environment, who the agent is (the session cookie),
the CSRF check of forms, and turning a HubError into a page a person can read."""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlparse

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from markupsafe import Markup, escape

from hub.auth import accounts as auth
from hub.contract import clock, i18n
from hub.contract.errors import HubError, PermissionDenied, Unauthenticated
from hub.contract.i18n import N_
from hub.contract.i18n import gettext as _
from hub.contract.timefmt import iso, parse_iso
from hub.web.errors import STATUS, from_hub_error
from hub.web.http import AGENTS, SESSION_COOKIE
from hub.web.inbox.words import draft_reason, event_text, fact_error, shown
from hub.web.keys import AUTH
from hub.web.keys import INBOX_JINJA as JINJA

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
CSRF_FIELD = "_csrf"
LOGIN_CSRF_COOKIE = "servicehub_login_csrf"


# --- templates -------------------------------------------------------------------------------


def _instant(value: str | datetime) -> datetime:
    """A time as the templates get it (an ISO text from a dict, or a datetime from a row), aware."""
    if isinstance(value, str):
        return parse_iso(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _ago(value) -> str:
    if value is None:
        return ""
    seconds = int((clock.now() - _instant(value)).total_seconds())
    return age(seconds)


_AGE_UNITS = ((86400 * 365, N_("%(num)s y")), (86400 * 30, N_("%(num)s mo")), (86400, N_("%(num)s d")),
              (3600, N_("%(num)s h")), (60, N_("%(num)s min")))


def age(seconds: int) -> str:
    seconds = max(0, int(seconds))
    for size, unit in _AGE_UNITS:
        if seconds >= size:
            return _(unit) % {"num": seconds // size}
    return _("now")


def _when(value) -> str:
    if value is None:
        return ""
    return _instant(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _iso(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else iso(value)


def _size(n) -> str:
    n = int(n or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def highlight_mentions(text: str, mentioned: list[dict]) -> Markup:
    """The note's text, escaped, with the @names of mentioned agents marked, and every other @name
    marked as not delivered (nobody by that name, or a name two agents share)."""
    from hub.conversations.mentions import directory, find

    out, pos = [], 0
    for hit in find(text, directory(mentioned)):
        out.append(escape(text[pos:hit.start]))
        if hit.agent_id is not None:
            out.append(Markup('<mark class="mention">{}</mark>').format(text[hit.start:hit.end]))
        else:
            out.append(Markup('<mark class="mention-missed" title="not delivered: no single agent has this name">{}</mark>'
                              '<span class="undelivered"> (not delivered)</span>').format(text[hit.start:hit.end]))
        pos = hit.end
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def setup_templates(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        app_key=JINJA,
        autoescape=True,  # every value is escaped unless marked safe (sanitised email HTML goes in srcdoc)
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ago=_ago, when=_when, iso=_iso, size=_size, mentions=highlight_mentions, said=said, shown=shown,
                       fact_error=fact_error, event_text=event_text, draft_reason=draft_reason)
    i18n.install(env)
    for code in i18n.LANGUAGES:  # read the catalogs now, not on the first request in that language
        i18n.translations(code)
    app.middlewares.append(language_middleware)


@web.middleware
async def language_middleware(request: web.Request, handler):
    """Text of this request in the browser's language (Accept-Language) until the signed-in agent's
    own choice replaces it (agent()): the sign-in page and errors before sign-in follow the browser."""
    i18n.set_current(i18n.negotiate(request.headers.get("Accept-Language")))
    return await handler(request)


def render(request: web.Request, name: str, context: dict, *, status: int = 200) -> web.Response:
    context.setdefault("here", request.path_qs)  # where the header's language switch comes back to
    response = aiohttp_jinja2.render_template(name, request, context, app_key=JINJA, status=status)
    response.headers["Cache-Control"] = "no-store"  # agents' pages hold customer data
    return response


# --- who is asking -----------------------------------------------------------------------------


def login_url(request: web.Request) -> str:
    return "/inbox/login?next=" + quote(request.path_qs, safe="")


def agent(request: web.Request, *, admin: bool = False) -> auth.Principal:
    """The signed-in agent (session cookie only: these are browser pages); off to the sign-in page
    otherwise. admin: the page needs the admin role."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        raise web.HTTPSeeOther(login_url(request))
    try:
        who = request.app[AUTH].resolve(token)
    except Unauthenticated:
        raise web.HTTPSeeOther(login_url(request)) from None
    if not who.is_agent or who.role not in AGENTS:
        raise PermissionDenied(_("the inbox is for agents"))
    i18n.set_current(who.language or _first_language(request, who, token))
    if admin and who.role != "admin":
        raise PermissionDenied(_("this page is for admins; ask an admin if you need it"))
    return who


def _first_language(request: web.Request, who: auth.Principal, token: str) -> str:
    """An agent who never chose a language gets their browser's, kept as their choice (from the
    first page after sign-in on): the header and the profile change it later."""
    from hub.auth import profile
    from hub.web.keys import ENGINE

    language = i18n.negotiate(request.headers.get("Accept-Language"))
    profile.set_language(request.app[ENGINE], who.id, language)
    request.app[AUTH].forget(token)
    return language


async def read_form(request: web.Request):
    """The posted form fields; a body that is no form is a 400 with a reason, never a 500."""
    from hub.web.errors import BadRequest

    try:
        return await request.post()  # bounded by the app's client_max_size (413 above it)
    except web.HTTPException:
        raise
    except (ValueError, AssertionError, UnicodeDecodeError, HttpProcessingError) as exc:  # a malformed body
        raise BadRequest(N_("the body is not a readable form: %(problem)s"), params={"problem": str(exc) or "malformed"}) from None


async def form_of(request: web.Request, who: auth.Principal):
    """The posted form, once its CSRF token (a field, or the X-CSRF-Token header for scripts)
    matches the session's."""
    form = await read_form(request)
    presented = form.get(CSRF_FIELD) or request.headers.get("X-CSRF-Token")
    if not auth.csrf_ok(who, presented if isinstance(presented, str) else None):
        raise PermissionDenied(_("this form's security token is missing or out of date; reload the page and try again"))
    return form


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def login_csrf_ok(request: web.Request, presented: str | None) -> bool:
    # Before sign-in there is no session: the token is a double-submit cookie (a cross-site
    # page can neither read the cookie nor set it, so it cannot post a matching field).
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return bool(expected and presented and hmac.compare_digest(expected, presented))


ERROR_TITLES = {400: N_("That request could not be read"), 401: N_("Please sign in"), 403: N_("Not allowed"), 404: N_("Not found"),
                405: N_("Not available this way"), 409: N_("Changed meanwhile"), 413: N_("Too large"), 422: N_("That did not work"),
                429: N_("Too many attempts"), 500: N_("Something went wrong"), 503: N_("Unavailable for a moment")}
ERROR_MESSAGES = {404: N_("There is nothing at this address. It may have been mistyped, or what was here was removed or merged."),
                  405: N_("This address cannot be used this way."),
                  413: N_("What was sent is larger than this hub accepts."),
                  500: N_("The hub failed to handle this request. It has been logged; try again, and tell an admin if it keeps happening.")}


def _signed_in(request: web.Request) -> auth.Principal | None:
    """The agent of the session, if any (an error page shows the navigation to a signed-in agent)."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    try:
        who = request.app[AUTH].resolve(token)
    except Exception:  # an error page must not fail for a stale session or a store that is down
        return None
    return who if who.is_agent and who.role in AGENTS else None


def error_page(request: web.Request, status: int, message: str = "", *, back: str | None = None) -> web.Response:
    """The styled error page: its status, what happened in words, a way back; never a traceback."""
    if back is None:
        referer = urlparse(request.headers.get("Referer", ""))
        back = safe_next(referer.path + (f"?{referer.query}" if referer.query else "")) if referer.path != request.path else "/inbox"
    who = None if status == 503 else _signed_in(request)
    context = {"status": status, "title": _(ERROR_TITLES.get(status, N_("That did not work"))),
               "message": message or _(ERROR_MESSAGES.get(status, N_("The request could not be handled."))), "back": back,
               "who": who, "csrf": who.csrf_token if who else None, "csrf_field": CSRF_FIELD}
    return render(request, "error.html", context, status=status)


def said(exc: HubError) -> str:
    """A HubError's message in the current language (the agent's): the capabilities write it in
    English, as a template and its values, and it is translated here, where it is shown."""
    return i18n.fill(exc.template, exc.params)


def json_error(exc: HubError) -> web.Response:
    """The JSON answer a page's script shows (its `error.message`), in the agent's language."""
    return from_hub_error(exc, said(exc))


def page(handler):
    """A page handler whose HubErrors become an error page with the right status (the app's
    error middleware would answer JSON)."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request):
        try:
            return await handler(request)
        except HubError as exc:
            status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
            response = error_page(request, status, said(exc))
            retry = getattr(exc, "retry_after", None)
            if retry:
                response.headers["Retry-After"] = str(max(1, int(retry + 0.999)))
            return response

    return wrapped


def int_param(raw: str | None, name: str) -> int:
    from hub.contract.errors import RejectedInput

    if raw is None or not str(raw).isdigit() or not (1 <= int(raw) <= 2_147_483_647):
        raise RejectedInput(_("%(name)s must be a positive integer") % {"name": name})
    return int(raw)


def safe_next(raw: str | None) -> str:
    """Only a path of the inbox itself: never an open redirect to another site."""
    if raw and raw.startswith("/inbox") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return "/inbox"
