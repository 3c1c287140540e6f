"""Satisfaction surveys: the public survey page and the answers.

The page /csat/{token} needs no login: the token in the link is the customer's proof. It works
without JavaScript (radio buttons and a form). Opening it never answers (mail scanners open every
link of a mail); posting the form does, guarded by a double-submit CSRF cookie and a rate limit per
client. Agents read a conversation's survey and answer at GET /api/v1/conversations/{id}/csat; the
Telegram buttons are recorded from the stored button press (an ingest listener).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
from datetime import UTC
from pathlib import Path

import jinja2
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, Field

from hub.contract.errors import RejectedInput
from hub.csat import surveys as csat
from hub.web import openapi as doc
from hub.web.capability import ApiDoc, Capability
from hub.web.http import AGENTS, client_key, db, json_response, path_id, principal
from hub.web.keys import CSAT_JINJA as JINJA
from hub.web.keys import CSAT_LIMITER as LIMITER
from hub.web.keys import CSAT_TASKS as TASKS
from hub.web.keys import ENGINE, INGEST_LISTENERS, SETTINGS
from hub.web.ratelimit import RateLimiter

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
CSRF_COOKIE = "servicehub_csat_csrf"
CSRF_FIELD = "_csrf"
PAGE_CSP = "default-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"


# --- the shapes the API documents ---------------------------------------------------------------


class CsatSurveyOut(BaseModel):
    channel: str
    language: str
    message_id: int | None
    sent_at: str
    expires_at: str


class CsatAnswerOut(BaseModel):
    score: int
    comment: str | None
    channel: str | None
    answered_at: str
    first_answered_at: str


class ConversationCsatOut(BaseModel):
    """A conversation's satisfaction survey (null: none was sent) and its answer (null: none yet)."""

    conversation_id: int
    survey: CsatSurveyOut | None
    answer: CsatAnswerOut | None


class SurveyOnResolveOut(BaseModel):
    """What resolving the conversation now would do about its satisfaction survey."""

    conversation_id: int
    possible: bool = Field(description="a survey can go out (surveys on, the channel surveyed, the customer reachable, none sent before)")
    would_send: bool = Field(description="a resolve without `survey` sends it (an agent replied)")
    needs_confirmation: bool = Field(description="possible, but no agent replied: only a resolve with survey=true sends it")
    answered: bool = Field(description="an agent replied to the customer in this conversation")
    channel: str | None
    recipient: str | None = Field(description="where the survey would go (an address, a chat)")
    reason: str | None = Field(description="why none goes by default")


OPENAPI_MODELS: list = [CsatSurveyOut, CsatAnswerOut, ConversationCsatOut, SurveyOnResolveOut]


# --- agents: the answer of a conversation --------------------------------------------------------


async def get_conversation_csat(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    return json_response(await db(csat.conversation_csat, request.app[ENGINE], path_id(request)))


async def get_survey_on_resolve(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    return json_response(await db(csat.survey_on_resolve_of, request.app[ENGINE], path_id(request)))


# --- the public page -------------------------------------------------------------------------


def _page(request: web.Request, name: str, context: dict, status: int = 200, headers: dict | None = None) -> web.Response:
    html = request.app[JINJA].get_template(name).render(**context)
    response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8", headers=headers)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the URL holds the token
    return response


def _notice(request: web.Request, status: int, heading: str, *lines: str, lang: str = "en",
            headers: dict | None = None) -> web.Response:
    return _page(request, "notice.html", {"lang": lang, "title": heading, "heading": heading, "lines": lines},
                 status, headers)


def _closed(request: web.Request, exc: Exception) -> web.Response:
    if isinstance(exc, csat.SurveyExpired):
        lang = (exc.detail or {}).get("language", "en")
        w = csat.words(lang)
        return _notice(request, 410, w["expired_title"], w["expired"], lang=lang)
    return _notice(
        request, 404, "Survey not found / 未找到此调查",
        "There is no survey at this address. Please check the link you followed.",
        "此地址没有调查，请检查您打开的链接。",
    )


def _limited(request: web.Request) -> web.Response | None:
    wait = request.app[LIMITER].check(client_key(request))
    if not wait:
        return None
    seconds = max(1, int(wait + 0.999))
    return _notice(request, 429, "Too many requests / 请求过于频繁",
                   f"Please wait {seconds} seconds and try again.", f"请等待 {seconds} 秒后重试。",
                   headers={"Retry-After": str(seconds)})


def _until(view: dict) -> str:
    return view["expires_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _survey_page(request: web.Request, view: dict, csrf: str, *, score=None, comment=None, error=None,
                 status: int = 200) -> web.Response:
    w = csat.words(view["language"])
    answered = None
    if view["score"] is not None:
        answered = w["answered"].format(score=view["score"], until=_until(view))
    context = {
        "lang": view["language"], "title": w["title"], "w": w, "scores": csat.SCORES, "csrf": csrf,
        "score": score if score is not None else view["score"],
        "comment": comment if comment is not None else view["comment"],
        "error": error, "answered": answered, "max_comment": csat.MAX_COMMENT,
        "action": f"/csat/{request.match_info['token']}",
    }
    response = _page(request, "survey.html", context, status)
    response.set_cookie(CSRF_COOKIE, csrf, path="/csat", httponly=True, samesite="Strict",
                        secure=request.secure, max_age=24 * 3600)
    return response


def _score_param(raw: str | None) -> int | None:
    return int(raw) if raw in ("1", "2", "3", "4", "5") else None


async def show_survey(request: web.Request) -> web.Response:
    limited = _limited(request)
    if limited:
        return limited
    try:
        view = await db(csat.survey_view, request.app[ENGINE], request.match_info["token"])
    except (csat.SurveyUnknown, csat.SurveyExpired) as exc:
        return _closed(request, exc)
    csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    return _survey_page(request, view, csrf, score=_score_param(request.query.get("score")))


async def answer_survey(request: web.Request) -> web.Response:
    limited = _limited(request)
    if limited:
        return limited
    token = request.match_info["token"]
    try:
        form = await request.post()
    except web.HTTPException:
        raise
    except (ValueError, AssertionError, UnicodeDecodeError, HttpProcessingError):  # a malformed body (a control character in a part's header...)
        return _notice(request, 400, "Your answer could not be read / 无法读取您的答复",
                       "Please send it with the form on the survey page.")
    presented = form.get(CSRF_FIELD)
    expected = request.cookies.get(CSRF_COOKIE, "")
    # Bytes: compare_digest refuses str with non-ASCII characters, and a forged field may have them.
    if not (isinstance(presented, str) and expected
            and hmac.compare_digest(presented.encode("utf-8", "replace"), expected.encode("utf-8", "replace"))):
        return _notice(request, 403, "This form could not be sent / 无法提交此表单",
                       "The form's security token is missing or out of date. Please open the survey link again.",
                       "表单的安全令牌缺失或已过期，请重新打开调查链接。")
    engine = request.app[ENGINE]
    score, comment = form.get("score"), form.get("comment")
    try:
        await db(csat.record_answer, engine, token, score, comment if isinstance(comment, str) else None)
    except (csat.SurveyUnknown, csat.SurveyExpired) as exc:
        return _closed(request, exc)
    except RejectedInput:
        try:
            view = await db(csat.survey_view, engine, token)
        except (csat.SurveyUnknown, csat.SurveyExpired) as exc:
            return _closed(request, exc)
        w = csat.words(view["language"])
        long = isinstance(comment, str) and len(comment.strip()) > csat.MAX_COMMENT
        error = w["too_long"].format(n=csat.MAX_COMMENT) if long else w["choose"]
        return _survey_page(request, view, expected, score=_score_param(score if isinstance(score, str) else None),
                            comment=comment if isinstance(comment, str) else None, error=error, status=422)
    view = await db(csat.survey_view, engine, token)
    w = csat.words(view["language"])
    return _notice(request, 200, w["thanks_title"], w["thanks"].format(until=_until(view)), lang=view["language"])


async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(body=(TEMPLATES / "survey.css").read_bytes(), content_type="text/css", charset="utf-8",
                        headers={"Cache-Control": "public, max-age=3600"})


# --- Telegram buttons: recorded from the stored button press ----------------------------------------


def _listen_for_answers(app: web.Application):
    engine = app[ENGINE]

    def on_ingest(result, message) -> None:
        # Quick and never raising (it runs on the ingest path for every message): only a Telegram
        # button press that carries a survey answer goes on, to a thread.
        if message.channel != "telegram" or not isinstance(message.metadata.get("csat"), dict):
            return
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(_record, engine, result.message_id))
        app[TASKS].add(task)
        task.add_done_callback(app[TASKS].discard)

    return on_ingest


def _record(engine, message_id: int) -> None:
    try:
        csat.record_callback(engine, message_id)
    except Exception:
        log.exception("recording the survey answer of message %s failed", message_id)


@contextlib.asynccontextmanager
async def lifespan(app: web.Application):
    """Catch up on presses stored while the hub stopped before recording them; at the end, wait for
    the answers being recorded."""
    try:
        found = await asyncio.to_thread(csat.record_missed, app[ENGINE], valid_days=app[SETTINGS].csat.valid_days)
        if found:
            log.info("recorded %d Telegram survey answers left over from before the start", found)
    except Exception:
        log.exception("catching up on Telegram survey answers failed")
    try:
        yield
    finally:
        tasks = list(app[TASKS])
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def setup(app: web.Application) -> None:
    """The surveys' settings, the page's templates and rate limit, and the Telegram buttons' listener."""
    settings = app[SETTINGS]
    csat.configure(app[ENGINE], settings)
    app[LIMITER] = RateLimiter(settings.csat.rate_per_minute)
    app[JINJA] = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )
    app[TASKS] = set()
    app[INGEST_LISTENERS].append(_listen_for_answers(app))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/conversations/{id}/csat", get_conversation_csat)
    app.router.add_get("/api/v1/conversations/{id}/survey", get_survey_on_resolve)
    app.router.add_get("/csat-assets/survey.css", stylesheet)
    app.router.add_get("/csat/{token}", show_survey)
    app.router.add_post("/csat/{token}", answer_survey)


def openapi() -> ApiDoc:
    """This module's routes in the hub's OpenAPI document: the agents' JSON and the public page."""
    page = {"type": "string"}

    def html(description: str) -> dict:
        return {"description": description, "content": {"text/html": {"schema": page}}}

    token = {"name": "token", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 100}}
    score = {"name": "score", "in": "query", "required": False,
             "description": "the score to show chosen (the link in the survey mail); nothing is recorded",
             "schema": {"type": "integer", "minimum": 1, "maximum": 5}}
    answer = {
        "type": "object",
        "properties": {
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "comment": {"type": "string", "maxLength": csat.MAX_COMMENT},
            CSRF_FIELD: {"type": "string", "description": "the value of the page's CSRF cookie"},
        },
        "required": ["score", CSRF_FIELD],
    }
    closed = {"404": html("no survey has this token"), "410": html("the survey's answering time is over"),
              "429": html("too many requests from this client; see Retry-After")}
    paths = {
        "/api/v1/conversations/{id}/csat": {
            "get": doc.op("The conversation's satisfaction survey and the customer's answer",
                       {"200": doc.json_response(ConversationCsatOut), **doc.errors(401, 403), **doc.errors(400, 404)},
                       params=[doc.path_id()], tags=["satisfaction"]),
        },
        "/api/v1/conversations/{id}/survey": {
            "get": doc.op("What a resolve would do about the satisfaction survey, before it (PATCH the conversation with "
                          "status resolved and survey true or false to decide)",
                       {"200": doc.json_response(SurveyOnResolveOut), **doc.errors(401, 403), **doc.errors(400, 404)},
                       params=[doc.path_id()], tags=["satisfaction"]),
        },
        "/csat/{token}": {
            "get": {"summary": "The satisfaction survey page (public: the token is the customer's proof)",
                    "tags": ["satisfaction"], "security": [], "parameters": [token, score],
                    "responses": {"200": html("the survey form (sets the CSRF cookie)"), **closed}},
            "post": {"summary": "Answer the survey (or change the answer while it is open)",
                     "tags": ["satisfaction"], "security": [], "parameters": [token],
                     "requestBody": {"required": True, "content": {
                         "application/x-www-form-urlencoded": {"schema": answer},
                         "multipart/form-data": {"schema": answer}}},
                     "responses": {"200": html("thank you: the answer is recorded"),
                                   "400": html("the body is not a form"),
                                   "403": html("the CSRF token is missing or wrong; nothing recorded"),
                                   "422": html("the form again, with what to correct"), **closed}},
        },
        "/csat-assets/survey.css": {
            "get": {"summary": "The survey page's stylesheet", "tags": ["satisfaction"], "security": [],
                    "responses": {"200": {"description": "the file", "content": {"text/css": {"schema": page}}}}},
        },
    }
    return ApiDoc(paths, OPENAPI_MODELS)


capability = Capability("csat", setup=setup, routes=add_routes, openapi=openapi, lifespan=lifespan)
