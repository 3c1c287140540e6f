"""Signing in and out through the REST API, and who the caller is. The per-account lock-out and
the per-client rate limit hold here as on the sign-in page."""

from __future__ import annotations

from aiohttp import web

from hub.auth import accounts as auth
from hub.auth import lockout
from hub.contract.errors import TooManyRequests, Unauthenticated
from hub.web import openapi as doc
from hub.web import schemas as s
from hub.web.capability import ApiDoc, Capability
from hub.web.http import SESSION_COOKIE, client_key, db, json_response, parse_body, principal
from hub.web.keys import AUTH, ENGINE, LOGIN_LIMITER, SETTINGS


async def login(request: web.Request) -> web.Response:
    wait = request.app[LOGIN_LIMITER].check(client_key(request))
    if wait:
        raise TooManyRequests("too many login attempts; wait and try again", retry_after=wait)
    body = await parse_body(request, s.LoginIn)
    settings = request.app[SETTINGS]
    engine = request.app[ENGINE]
    # The per-account lock-out (hub/auth/lockout.py) holds for the API as for the sign-in page, so a
    # guesser cannot switch to the API to get around it.
    await db(lockout.check, engine, body.email)
    try:
        session = await db(auth.login, engine, body.email, body.password, days=settings.session_days)
    except Unauthenticated:
        await db(lockout.record_failure, engine, body.email)
        raise
    await db(lockout.clear, engine, body.email)
    who = session.principal
    response = json_response(
        {
            "token": session.token,
            "csrf_token": session.csrf_token,
            "agent": {"kind": who.kind, "id": who.id, "role": who.role, "name": who.name},
        }
    )
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=int(settings.session_days * 86400),
        httponly=True,
        secure=settings.cookie_secure,
        samesite="Lax",
        path="/",
    )
    return response


async def logout(request: web.Request) -> web.Response:
    principal(request)
    token = request.headers.get("Authorization", "").partition(" ")[2].strip() or request.cookies.get(SESSION_COOKIE, "")
    await db(auth.logout, request.app[ENGINE], token)
    request.app[AUTH].forget(token)
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def me(request: web.Request) -> web.Response:
    who = principal(request)
    return json_response({"kind": who.kind, "id": who.id, "role": who.role, "name": who.name})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/auth/login", login)
    app.router.add_post("/api/v1/auth/logout", logout)
    app.router.add_get("/api/v1/auth/me", me)


def openapi() -> ApiDoc:
    auth_errors = doc.errors(401, 403)
    paths = {
        "/api/v1/auth/login": {
            "post": doc.op("Agent login: a session cookie and a bearer token",
                           {"200": doc.json_response(s.LoginOut), **doc.errors(400, 401, 413, 422, 429)},
                           body=s.LoginIn, security=False, tags=["auth"])
        },
        "/api/v1/auth/logout": {
            "post": doc.op("End the current session", {"204": {"description": "logged out"}, **auth_errors}, tags=["auth"])
        },
        "/api/v1/auth/me": {
            "get": doc.op("Who the caller is", {"200": doc.json_response(s.AgentOut), **auth_errors}, tags=["auth"])
        },
    }
    return ApiDoc(paths, [s.LoginIn, s.LoginOut, s.AgentOut])


capability = Capability("auth", routes=add_routes, openapi=openapi)
