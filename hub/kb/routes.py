"""Knowledge base routes: articles, search, suggestions, feedback, knowledge capture.

Agents read everything and write drafts; admins publish, edit published articles and delete
(hub/kb/articles.py). Every write goes to the store first and the index follows: the handler brings the
index in line for that article right away (so the writer's next search sees it); if that fails,
or the index is still loading, the index's own thread catches up from the store. The same holds
for an agent's verdict on a suggestion: stored first, then taken into the index's memory of what
agents chose (hub/kb/index.py), so the next similar question already ranks by it.

Before the model and the index have loaded (a few seconds after start) search and suggestions
answer 503 with Retry-After rather than lexical-only results, whose confidence is not calibrated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from aiohttp import web

from hub.contract.errors import RejectedInput
from hub.kb import articles as kb
from hub.kb import schemas as ks
from hub.kb import suggestions
from hub.kb.index import IndexNotReady, KnowledgeIndex, shared_embedder
from hub.runtime import roles
from hub.store.search_text import search_text
from hub.web import openapi as doc
from hub.web.capability import ApiDoc, Capability
from hub.web.errors import error_response
from hub.web.http import AGENTS, db, int_query, json_response, parse_body, path_id, principal
from hub.web.keys import ENGINE, KB_INDEX, LIVE_EVENTS, ROLE, SETTINGS

log = logging.getLogger(__name__)

# pydantic shapes these routes document (added to the OpenAPI components)
OPENAPI_MODELS: list = list(ks.MODELS)

MAX_K = 20
_LANGUAGE = re.compile(ks.LANGUAGE_PATTERN)


def setup(app: web.Application) -> None:
    """The index (its model and its thread start with the app: lifespan)."""
    settings = app[SETTINGS]
    conf = settings.kb
    app[KB_INDEX] = KnowledgeIndex(
        app[ENGINE],
        conf.index_dir or settings.data_dir / "kb-index",
        shared_embedder(conf.model_path),
        min_confidence=conf.min_confidence,
    )
    events = app.get(LIVE_EVENTS)
    if events is not None:
        events.listeners.append(_other_process_changed(app[KB_INDEX]))


def _other_process_changed(index: KnowledgeIndex):
    """Another process changed an article or learned a verdict: follow the store now instead of
    at the next sync_seconds (the vectors it computed are stored: nothing is encoded again)."""
    def hear(event: dict) -> None:
        if event.get("type") == "kb":
            index.wake()
    return hear


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/kb/articles", list_articles)
    r.add_post("/api/v1/kb/articles", create_article)
    r.add_get("/api/v1/kb/articles/{id}", get_article)
    r.add_patch("/api/v1/kb/articles/{id}", patch_article)
    r.add_delete("/api/v1/kb/articles/{id}", delete_article)
    r.add_get("/api/v1/kb/search", search)
    r.add_get("/api/v1/kb/feedback", feedback_report)
    r.add_get("/api/v1/conversations/{id}/suggestions", get_suggestions)
    r.add_post("/api/v1/conversations/{id}/suggestions/feedback", post_feedback)
    r.add_post("/api/v1/conversations/{id}/messages/{message_id}/capture", capture)


@contextlib.asynccontextmanager
async def lifespan(app: web.Application):
    """The index's own thread: model warm-up, then keeping up with the store."""
    if not roles.serves_http(app[ROLE]):
        # A worker answers no search: it spares the model (seconds to load, ~100 MB) and the index.
        yield
        return
    index = app[KB_INDEX]
    conf = app[SETTINGS].kb
    index.start(warm_up=conf.warm_up, sync_seconds=conf.sync_seconds)
    try:
        yield
    finally:
        await asyncio.to_thread(index.stop)


def _not_ready(exc: IndexNotReady) -> web.Response:
    if exc.retry_after is None:
        return error_response(503, "kb_unavailable", exc.message)
    return error_response(503, "kb_loading", exc.message, headers={"Retry-After": str(int(exc.retry_after))})


async def _follow(app: web.Application, article_id: int) -> None:
    """The index follows a write of the store (see the module docstring)."""
    index = app[KB_INDEX]
    if not index.ready:
        index.wake()
    else:
        try:
            await asyncio.to_thread(index.sync, [article_id])
        except Exception:
            log.exception("knowledge base: indexing article %s failed; the index catches up from the store", article_id)
            index.wake()
    _tell_others(app, article_id)


follow = _follow  # for the inbox's editor: its writes are followed by the index the same way


def _tell_others(app: web.Application, article_id: int | None) -> None:
    """The other processes' indexes follow the store now (after this one stored the vectors)."""
    events = app.get(LIVE_EVENTS)
    if events is not None:
        events.publish({"type": "kb", "article_id": article_id})


# --- articles --------------------------------------------------------------------------------


def _fields(body) -> kb.ArticleFields:
    return kb.ArticleFields(
        title=body.title, body=body.body, format=body.format, language=body.language,
        tags=tuple(body.tags) if body.tags is not None else None, published=body.published,
    )


async def list_articles(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    q = request.query
    published_raw = q.get("published")
    if published_raw in (None, ""):
        published = None
    elif published_raw in ("true", "false"):
        published = published_raw == "true"
    else:
        raise RejectedInput("published must be true or false")
    language = q.get("language") or None
    if language is not None and not _LANGUAGE.match(language):
        raise RejectedInput("language must be a language tag like en or pt-BR")
    page = await db(
        kb.list_articles, request.app[ENGINE], published=published, language=language,
        q=search_text(q.get("q")),
        limit=int_query(request, "limit", low=1, high=kb.MAX_PAGE) or 50, cursor=q.get("cursor") or None,
    )
    return json_response(page)


async def create_article(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    body = await parse_body(request, ks.ArticleIn)
    chars = request.app[SETTINGS].kb.passage_chars
    article = await db(kb.create_article, request.app[ENGINE], _fields(body), who, max_chars=chars)
    await _follow(request.app, article["id"])
    return json_response(article, status=201)


async def get_article(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    return json_response(await db(kb.get_article, request.app[ENGINE], path_id(request)))


async def patch_article(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    article_id = path_id(request)
    body = await parse_body(request, ks.ArticlePatch)
    chars = request.app[SETTINGS].kb.passage_chars
    article = await db(kb.update_article, request.app[ENGINE], article_id, _fields(body), who, max_chars=chars)
    await _follow(request.app, article_id)
    return json_response(article)


async def delete_article(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    article_id = path_id(request)
    await db(kb.delete_article, request.app[ENGINE], article_id, who)
    await _follow(request.app, article_id)
    return web.Response(status=204)


# --- search and suggestions ------------------------------------------------------------------


async def search(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    query = request.query.get("q", "")
    if not query.strip():
        raise RejectedInput("q is required: the text to search for")
    if len(query) > 500:
        raise RejectedInput("q must be at most 500 characters")
    method = request.query.get("method") or "hybrid"
    if method not in ("hybrid", "dense", "lexical"):
        raise RejectedInput("method must be hybrid, dense or lexical")
    k = int_query(request, "k", low=1, high=MAX_K) or 5
    try:
        return json_response(await db(suggestions.search, request.app[KB_INDEX], query, k=k, method=method))
    except IndexNotReady as exc:
        return _not_ready(exc)


async def get_suggestions(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    conversation_id = path_id(request)
    conf = request.app[SETTINGS].kb
    k = int_query(request, "k", low=1, high=MAX_K) or conf.suggestions
    try:
        out = await db(suggestions.suggest, request.app[ENGINE], request.app[KB_INDEX], conversation_id, k=k,
                       turns=conf.question_turns, who=who)
    except IndexNotReady as exc:
        return _not_ready(exc)
    return json_response(out)


# --- feedback and capture --------------------------------------------------------------------


async def post_feedback(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    conversation_id = path_id(request)
    body = await parse_body(request, ks.FeedbackIn)
    out = await db(suggestions.record_feedback, request.app[ENGINE], conversation_id, body.article_id, body.passage_id,
                   body.verdict, who, turns=request.app[SETTINGS].kb.question_turns)
    await _learn(request.app, conversation_id, body.article_id)
    return json_response(out, status=201 if out["created"] else 200)


async def _learn(app: web.Application, conversation_id: int, article_id: int) -> None:
    """The index's memory follows a verdict (see the module docstring); the verdict is stored
    whatever happens here, and the next reload of the memory reads it."""
    index = app[KB_INDEX]
    try:
        await asyncio.to_thread(index.learn, conversation_id, article_id)
    except Exception:
        log.exception("knowledge base: learning from the verdict on article %s failed; the next reload reads it", article_id)
        index.wake()
    _tell_others(app, article_id)


async def feedback_report(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    limit = int_query(request, "limit", low=1, high=1000) or 100
    return json_response(await db(suggestions.feedback_report, request.app[ENGINE], limit=limit))


async def capture(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    conversation_id = path_id(request)
    message_id = path_id(request, "message_id")
    if await request.read():
        body = await parse_body(request, ks.CaptureIn)
    else:
        body = ks.CaptureIn()
    chars = request.app[SETTINGS].kb.passage_chars
    article, created = await db(suggestions.capture_reply, request.app[ENGINE], conversation_id, message_id, who,
                                title=body.title, tags=tuple(body.tags), passage_chars=chars, published=body.published)
    if article["published"]:
        await _follow(request.app, article["id"])
    return json_response(article, status=201 if created else 200)


# --- OpenAPI -----------------------------------------------------------------------------------


def openapi() -> ApiDoc:
    auth = doc.errors(401, 403)
    loading = {"503": {**doc.ERROR, "description": "the model and index are loading (Retry-After), or the model cannot load",
                       "headers": {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}}}}
    id_schema = {"type": "integer", "minimum": 1, "maximum": 2147483647}
    k_param = doc.query("k", {"type": "integer", "minimum": 1, "maximum": MAX_K}, "how many articles (default: the kb.suggestions setting / 5)")
    tags = ["knowledge base"]
    paths = {
        "/api/v1/kb/articles": {
            "get": doc.op("List articles, newest first", {"200": doc.json_response(ks.ArticlePage), **auth, **doc.errors(400, 422)},
                       params=[
                           doc.query("published", {"type": "string", "enum": ["true", "false"]}, "only published articles, or only drafts"),
                           doc.query("language", {"type": "string", "pattern": ks.LANGUAGE_PATTERN, "maxLength": 16}, "language tag"),
                           doc.query("q", {"type": "string", "maxLength": 200}, "text in the title"),
                           doc.query("limit", {"type": "integer", "minimum": 1, "maximum": kb.MAX_PAGE}, "page size (default 50)"),
                           doc.query("cursor", {"type": "string", "pattern": "^[1-9][0-9]{0,9}$"}, "next_cursor of the previous page"),
                       ], tags=tags),
            "post": doc.op("Create an article (agents: drafts only)", {"201": doc.json_response(ks.ArticleOut), **auth, **doc.errors(400, 413, 422)},
                        body=ks.ArticleIn, tags=tags),
        },
        "/api/v1/kb/articles/{id}": {
            "get": doc.op("An article with its passages", {"200": doc.json_response(ks.ArticleOut), **auth, **doc.errors(400, 404)},
                       params=[doc.path_id()], tags=tags),
            "patch": doc.op("Change an article (published ones and publishing: admins; the index re-embeds only changed passages)",
                         {"200": doc.json_response(ks.ArticleOut), **auth, **doc.errors(400, 404, 413, 422)},
                         body=ks.ArticlePatch, params=[doc.path_id()], tags=tags),
            "delete": doc.op("Delete an article (admin)", {"204": {"description": "deleted"}, **auth, **doc.errors(400, 404)},
                          params=[doc.path_id()], tags=tags),
        },
        "/api/v1/kb/search": {
            "get": doc.op("Search the published articles (hybrid: meaning and words)",
                       {"200": doc.json_response(ks.KbSearchOut), **auth, **doc.errors(422), **loading},
                       params=[{"name": "q", "in": "query", "required": True, "schema": {"type": "string", "minLength": 1, "maxLength": 500},
                                "description": "the question"},
                               k_param,
                               doc.query("method", {"type": "string", "enum": ["hybrid", "dense", "lexical"]}, "hybrid (default), dense (meaning only) or lexical (words only)")],
                       tags=tags),
        },
        "/api/v1/kb/feedback": {
            "get": doc.op("Per article: in how many conversations it was suggested, used, not helpful",
                       {"200": doc.json_response(ks.FeedbackReport), **auth, **doc.errors(422)},
                       params=[doc.query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most (default 100)")], tags=tags),
        },
        "/api/v1/conversations/{id}/suggestions": {
            "get": doc.op("Answer suggestions for the customer's latest messages, or 'no good answer'",
                       {"200": doc.json_response(ks.SuggestionsOut), **auth, **doc.errors(400, 404, 422), **loading},
                       params=[doc.path_id(), k_param], tags=tags),
        },
        "/api/v1/conversations/{id}/suggestions/feedback": {
            "post": doc.op("Mark a suggested article used or not helpful on this conversation",
                        {"201": doc.json_response(ks.FeedbackOut, "recorded"), "200": doc.json_response(ks.FeedbackOut, "recorded before"),
                         **auth, **doc.errors(400, 404, 413, 422)},
                        body=ks.FeedbackIn, params=[doc.path_id()], tags=tags),
        },
        "/api/v1/conversations/{id}/messages/{message_id}/capture": {
            "post": {
                **doc.op("Turn an agent's reply in a resolved conversation into a draft article (admins: or a published one)",
                      {"201": doc.json_response(ks.ArticleOut, "the draft"), "200": doc.json_response(ks.ArticleOut, "captured before: the same draft"),
                       **auth, **doc.errors(400, 404, 409, 413, 422)},
                      params=[doc.path_id(), {"name": "message_id", "in": "path", "required": True, "schema": id_schema}], tags=tags),
                "requestBody": {"required": False, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CaptureIn"}}}},
            },
        },
    }
    return ApiDoc(paths, OPENAPI_MODELS)


capability = Capability("kb", setup=setup, routes=add_routes, openapi=openapi, lifespan=lifespan, requires=("process",))
