"""Signing in to the inbox the way its form does (GET the page for its token, POST the form), and the
CSRF tokens its pages carry. The browser's own sign-in (Playwright) stays in tests/web/test_inbox_browser.py."""

from __future__ import annotations

import re

AGENT_EMAIL, AGENT_PASSWORD = "agent@example.com", "agent password"


def login_token(html: str) -> str:
    """The sign-in form's hidden token (the form is its own CSRF check: no session yet)."""
    return re.search(r'name="_csrf" value="([^"]+)"', html).group(1)


def csrf_of(html: str) -> str:
    """The CSRF token a signed-in page carries for its forms and scripts."""
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


async def sign_in(client, email: str = AGENT_EMAIL, password: str = AGENT_PASSWORD, *, expect: int | None = 303):
    """Sign in through the inbox's form on an aiohttp TestClient (its cookie jar keeps the session);
    the form's answer, which must have status `expect` (None: any)."""
    page = await client.get("/inbox/login")
    assert page.status == 200
    token = login_token(await page.text())
    resp = await client.post("/inbox/login", data={"email": email, "password": password, "_csrf": token, "next": "/inbox"},
                             allow_redirects=False)
    if expect is not None:
        assert resp.status == expect, await resp.text()
    return resp


async def sign_in_for_forms(client, email: str, password: str, *, page: str = "/inbox") -> str:
    """A fresh session for the account (any earlier one dropped); the CSRF token of `page`."""
    client.session.cookie_jar.clear()
    await sign_in(client, email, password)
    return csrf_of(await (await client.get(page)).text())
