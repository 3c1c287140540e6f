"""Signing in, sessions and who a client is, on SQLite and PostgreSQL: every spelling of an address
counts towards one lock-out and only the plain one signs in; rate limits count IPv6 clients by
their /64 and believe X-Forwarded-For only from the proxies the settings list; a session ends after
a spell of inactivity; /metrics can require a token."""

from __future__ import annotations

import contextlib
import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from hub.auth import lockout
from hub.auth.accounts import Authenticator, create_agent, login, sign_in_address
from hub.auth.lockout import account_key
from hub.config.settings import CsatSettings
from hub.contract import clock
from hub.contract.errors import Conflict, Unauthenticated
from hub.store.db import make_engine
from hub.web.app import create_app
from hub.web.keys import AUTH
from hub.web.ratelimit import client_address, client_key, parse_networks
from tests.support.inbox import sign_in

VARIANTS = ["<admin@example.com>", "admin@example.com.", "admin@ｅxample.com", "ＡＤＭＩＮ＠ＥＸＡＭＰＬＥ．ＣＯＭ",
            "ad\u00admin@example.com", " <Admin@Example.COM.> "]
PASSWORD = "admin password"


async def start(settings, **overrides):
    app = create_app(settings.model_copy(update=overrides))
    engine = make_engine(settings.effective_database_url)
    with contextlib.suppress(Conflict):  # a second hub on the same store
        create_agent(engine, "admin@example.com", PASSWORD, role="admin")
    client = TestClient(TestServer(app))
    await client.start_server()
    return client, engine


@pytest.fixture
async def hub(settings):
    client, engine = await start(settings)
    yield client, engine
    await client.close()
    engine.dispose()


async def api_login(client, email, password=PASSWORD, headers=None):
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password}, headers=headers)


# --- one account, one count ------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_spelling_of_an_address_is_one_account_for_the_lock_out(variant):
    assert account_key(variant) == "admin@example.com"
    assert sign_in_address(variant) is None  # and none of them signs in


def test_the_plain_spellings_sign_in():
    for typed in ("admin@example.com", " Admin@Example.COM ", "ADMIN@EXAMPLE.COM"):
        assert sign_in_address(typed) == "admin@example.com"
    # An IDN domain in Unicode or in ASCII is the same plain address.
    assert sign_in_address("ana@bücher.example") == sign_in_address("ana@xn--bcher-kva.example") == "ana@xn--bcher-kva.example"
    assert account_key("ana@BÜCHER.example.") == "ana@xn--bcher-kva.example"
    assert account_key("") == "" and account_key("not an address") == "notanaddress"


async def test_spellings_share_the_five_tries_and_none_signs_in_as_the_admin(hub):
    client, engine = hub
    for variant in VARIANTS:  # with the right password: refused, with a hint, and counted
        resp = await api_login(client, variant)
        assert resp.status == 401, variant
        assert "type the address plainly" in (await resp.json())["error"]["message"]
        if variant == VARIANTS[lockout.LockoutPolicy().max_failures - 1]:
            break
    # Five tries across five spellings: the account is locked, for every spelling, the plain one too.
    for email in ("admin@example.com", VARIANTS[-1]):
        resp = await api_login(client, email)
        assert resp.status == 429, await resp.text()
        assert (await resp.json())["error"]["code"] == "account_locked"
    assert [a["email"] for a in lockout.locked_accounts(engine)] == ["admin@example.com"]


async def test_the_plain_address_signs_in_and_clears_the_count_of_all_spellings(hub):
    client, engine = hub
    for variant in VARIANTS[:3]:
        assert (await api_login(client, variant, "wrong password")).status == 401
    resp = await api_login(client, " Admin@Example.com ")
    assert resp.status == 200 and (await resp.json())["agent"]["name"] == "admin@example.com"
    for variant in VARIANTS[:4]:  # counting starts again: four more failures do not lock
        assert (await api_login(client, variant, "wrong password")).status == 401
    assert (await api_login(client, "admin@example.com")).status == 200


async def test_the_sign_in_page_counts_spellings_as_one_account(hub):
    client, _ = hub
    for variant in VARIANTS[:lockout.LockoutPolicy().max_failures - 1]:
        resp = await sign_in(client, variant, PASSWORD, expect=401)
        assert "Type the address plainly" in await resp.text()
    resp = await sign_in(client, VARIANTS[-1], PASSWORD, expect=401)
    assert "now locked" in await resp.text()
    resp = await sign_in(client, "admin@example.com", PASSWORD, expect=429)
    assert "locked after too many failed sign-ins" in await resp.text()


def test_login_itself_refuses_the_variants(engine):
    create_agent(engine, "admin@example.com", PASSWORD, role="admin")
    for variant in VARIANTS:
        with pytest.raises(Unauthenticated):
            login(engine, variant, PASSWORD, days=1)
    assert login(engine, "admin@example.com", PASSWORD, days=1).principal.name == "admin@example.com"


# --- who the client is --------------------------------------------------------------------------------


def test_client_keys():
    trusted = parse_networks(["10.0.0.0/8", "2001:db8:ffff::/48"])
    assert client_key(client_address("2001:db8:1:2:aaaa::1")) == client_key(client_address("2001:db8:1:2:ffff::9")) == "2001:db8:1:2::/64"
    assert client_key(client_address("2001:db8:1:3::1")) == "2001:db8:1:3::/64"
    assert client_key(client_address("::ffff:192.0.2.7")) == "192.0.2.7"  # IPv4 on a dual-stack socket
    assert client_key(client_address(None)) == "unknown"
    # The header is read only from a listed proxy, from the right, past the listed proxies only.
    assert str(client_address("192.0.2.9", ["198.51.100.1"], trusted)) == "192.0.2.9"
    assert str(client_address("10.0.0.1", ["198.51.100.1"], trusted)) == "198.51.100.1"
    assert str(client_address("10.0.0.1", ["203.0.113.66, 198.51.100.1"], trusted)) == "198.51.100.1"  # the left is the client's word
    assert str(client_address("10.0.0.1", ["198.51.100.1, 10.0.0.2"], trusted)) == "198.51.100.1"
    assert str(client_address("10.0.0.1", ["198.51.100.1", "10.0.0.2"], trusted)) == "198.51.100.1"  # two headers
    assert str(client_address("10.0.0.1", ["not an address, 10.0.0.2"], trusted)) == "10.0.0.2"
    assert str(client_address("10.0.0.1", ["[2001:db8:5::1]:4711"], trusted)) == "2001:db8:5::1"
    assert str(client_address("10.0.0.1", [""], trusted)) == "10.0.0.1"
    assert str(client_address("10.0.0.1", [", ".join(["10.0.0.3"] * 10_000)], trusted)) == "10.0.0.3"
    with pytest.raises(ValueError, match="not an IP address or network"):
        parse_networks(["10.0.0.0/33"])


def v6(net: str, host: int) -> str:
    return str(ipaddress.IPv6Network(net)[host])


async def test_ipv6_clients_are_limited_per_64(settings):
    client, engine = await start(settings, login_rate_per_minute=3, trusted_proxies=["127.0.0.1"])
    try:
        for host in range(1, 4):  # three addresses of one /64: three tries, then the /64 waits
            resp = await api_login(client, "admin@example.com", "wrong", {"X-Forwarded-For": v6("2001:db8:1:2::/64", host)})
            assert resp.status == 401
        resp = await api_login(client, "admin@example.com", "wrong", {"X-Forwarded-For": v6("2001:db8:1:2::/64", 99)})
        assert resp.status == 429 and (await resp.json())["error"]["code"] == "rate_limited"
        # Another /64 (another customer line) is not held up by it.
        resp = await api_login(client, "admin@example.com", PASSWORD, {"X-Forwarded-For": v6("2001:db8:1:3::/64", 1)})
        assert resp.status == 200
    finally:
        await client.close()
        engine.dispose()


async def test_a_forged_forwarded_for_neither_dodges_the_limit_nor_locks_out_others(settings):
    # No proxy is listed: the header is the client's word and counts for nothing.
    client, engine = await start(settings, login_rate_per_minute=3)
    try:
        for i in range(3):
            resp = await api_login(client, "admin@example.com", "wrong", {"X-Forwarded-For": f"198.51.100.{i}"})
            assert resp.status == 401
        resp = await api_login(client, "admin@example.com", "wrong", {"X-Forwarded-For": "198.51.100.200"})
        assert resp.status == 429  # all four came from the one peer
    finally:
        await client.close()
        engine.dispose()
    # Behind a listed proxy, a client that writes a victim's address into the header is still
    # counted by the address the proxy saw (appended on the right): the victim can still sign in.
    client, engine = await start(settings, login_rate_per_minute=3, trusted_proxies=["127.0.0.0/8"])
    try:
        for _ in range(5):
            await api_login(client, "admin@example.com", "wrong", {"X-Forwarded-For": "192.0.2.50, 203.0.113.7"})
        assert (await api_login(client, "admin@example.com", "wrong", {"X-Forwarded-For": "203.0.113.7"})).status == 429
        lockout.clear(engine, "admin@example.com")
        assert (await api_login(client, "admin@example.com", PASSWORD, {"X-Forwarded-For": "192.0.2.50"})).status == 200
    finally:
        await client.close()
        engine.dispose()


async def test_the_web_form_and_the_survey_page_count_clients_the_same_way(settings):
    client, engine = await start(settings, trusted_proxies=["127.0.0.1"], form_rate_per_minute=1,
                                 csat=CsatSettings(rate_per_minute=1))
    try:
        one, same, other = v6("2001:db8:7:1::/64", 1), v6("2001:db8:7:1::/64", 2), v6("2001:db8:7:2::/64", 1)
        for path in ("/csat/no-such-survey", "/forms/contact"):
            method = client.get if path.startswith("/csat") else client.post
            first = await method(path, headers={"X-Forwarded-For": one}, data=None)
            assert first.status != 429, path
            assert (await method(path, headers={"X-Forwarded-For": same})).status == 429, path
            assert (await method(path, headers={"X-Forwarded-For": other})).status != 429, path
    finally:
        await client.close()
        engine.dispose()


# --- sessions end when idle -----------------------------------------------------------------------------


def test_a_session_ends_after_the_idle_time_but_not_while_used(engine):
    create_agent(engine, "admin@example.com", PASSWORD, role="admin")
    t0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
    fixed = clock.FixedClock(t0)
    auth = Authenticator(engine, ttl=0, idle=timedelta(hours=12))
    with clock.use(fixed):
        session = login(engine, "admin@example.com", PASSWORD, days=14)
        for _ in range(6):  # used every 11 hours for almost three days: still signed in
            fixed.advance(hours=11)
            assert auth.resolve(session.token).name == "admin@example.com"
        fixed.advance(hours=12, seconds=1)  # then a night and a day away
        with pytest.raises(Unauthenticated):
            auth.resolve(session.token)
        # The absolute lifetime holds too, however busy the session is.
        other = login(engine, "admin@example.com", PASSWORD, days=1)
        for _ in range(3):
            fixed.advance(hours=8)
            try:
                auth.resolve(other.token)
            except Unauthenticated:
                break
        else:
            pytest.fail("a session outlived its days")


async def test_the_idle_time_is_a_setting(settings):
    t0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
    fixed = clock.FixedClock(t0)
    with clock.use(fixed):
        client, engine = await start(settings, session_idle_hours=1.0)
        try:
            token = (await (await api_login(client, "admin@example.com")).json())["token"]
            me = {"Authorization": f"Bearer {token}"}
            assert (await client.get("/api/v1/auth/me", headers=me)).status == 200
            fixed.advance(minutes=61)
            client.server.app[AUTH]._cache.clear()  # what the cache's 10 s would do
            assert (await client.get("/api/v1/auth/me", headers=me)).status == 401
        finally:
            await client.close()
            engine.dispose()


# --- /metrics -------------------------------------------------------------------------------------------


async def test_metrics_can_require_a_token(settings):
    client, engine = await start(settings, metrics_token=SecretStr("scrape-me-7f3a"))
    try:
        assert (await client.get("/metrics")).status == 401
        assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
        assert (await client.get("/metrics", headers={"Authorization": "Bearer scrape-me-7f3aé"})).status == 401
        assert (await client.get("/metrics", headers={"Authorization": "Basic c2NyYXBlLW1lLTdmM2E="})).status == 401
        resp = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me-7f3a"})
        assert resp.status == 200 and "servicehub" in await resp.text()
    finally:
        await client.close()
        engine.dispose()


async def test_metrics_are_open_without_a_token(hub):
    client, _ = hub
    assert (await client.get("/metrics")).status == 200
