"""The inbox pages through a real aiohttp server (no browser), on SQLite and PostgreSQL: sign-in
and sessions, CSRF, lock-out, roles, what the list and a conversation show, and that what a
customer typed is escaped."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.auth import lockout
from hub.auth.accounts import create_agent
from hub.contract.messages import InboundMessage, Sender
from hub.contract.principal import Principal
from hub.conversations import macros
from hub.conversations.actions import add_note, update_conversation
from hub.conversations.replies import reply
from hub.ingest.pipeline import ingest
from hub.store.blobs import BlobStore
from hub.store.db import make_engine
from hub.web.app import create_app
from tests.support.inbox import csrf_of, login_token, sign_in

XSS = '<script>window.pwned=1</script><img src=x onerror="alert(1)">'


@pytest.fixture
async def hub(settings):
    settings.kb.warm_up = False
    # These tests are about what the inbox shows, and they expect conversations to stay unassigned
    # until someone assigns them: no automatic assignment (tests/assignment/test_assignment.py covers it).
    settings.sla.assignment = "off"
    app = create_app(settings)
    engine = make_engine(settings.effective_database_url)
    ids = {
        "admin": create_agent(engine, "admin@example.com", "admin password", role="admin", name="Ada Admin"),
        "agent": create_agent(engine, "agent@example.com", "agent password", role="agent", name="Bo Agent"),
    }
    client = TestClient(TestServer(app))
    await client.start_server()
    client.engine = engine
    client.ids = ids
    client.blobs = BlobStore(settings.blob_dir)
    yield client
    await client.close()
    engine.dispose()


def store(engine, blobs=None, **kw):
    kw.setdefault("channel", "email")
    kw.setdefault("external_id", f"<{kw.get('text', 'x')[:20]}-{id(kw)}@example.com>")
    kw.setdefault("sender", Sender("ana@example.com", "Ana Silva"))
    kw.setdefault("text", "Where is my order?")
    return ingest(engine, InboundMessage(**kw), blobs=blobs)


async def test_pages_need_a_session_and_sign_in_sets_a_secure_session(hub):
    resp = await hub.get("/inbox", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/inbox/login?next=")
    resp = await hub.get("/inbox/c/1", allow_redirects=False)
    assert resp.status == 303
    resp = await sign_in(hub)
    cookie = resp.cookies["servicehub_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    page = await hub.get("/inbox")
    assert page.status == 200 and "agent@example.com" in await page.text()
    assert "no-store" in page.headers["Cache-Control"]
    assert "script-src" not in page.headers["Content-Security-Policy"]  # the app's strict default stays


async def test_sign_in_form_needs_its_token_and_an_open_redirect_is_refused(hub):
    resp = await hub.post("/inbox/login", data={"email": "agent@example.com", "password": "agent password"},
                          allow_redirects=False)
    assert resp.status == 403 and "out of date" in await resp.text()
    token = login_token(await (await hub.get("/inbox/login")).text())
    resp = await hub.post("/inbox/login", data={"email": "agent@example.com", "password": "agent password",
                                                "_csrf": token, "next": "//evil.example/x"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/inbox"


async def test_forms_without_the_csrf_token_are_refused(hub):
    cid = store(hub.engine).conversation_id
    await sign_in(hub)
    resp = await hub.post(f"/inbox/c/{cid}/reply", data={"text": "hello"}, allow_redirects=False)
    assert resp.status == 403 and "security token" in await resp.text()
    resp = await hub.post(f"/inbox/c/{cid}/reply", data={"text": "hello", "_csrf": "wrong"}, allow_redirects=False)
    assert resp.status == 403
    resp = await hub.post("/inbox/logout", data={}, allow_redirects=False)
    assert resp.status == 403
    html = await (await hub.get(f"/inbox/c/{cid}")).text()
    assert "hello" not in html  # nothing was sent


async def test_an_account_locks_after_repeated_failures_with_a_clear_message(hub):
    for _ in range(lockout.LockoutPolicy().max_failures - 1):
        resp = await sign_in(hub, password="wrong password", expect=401)
        assert "Wrong email or password." in await resp.text()
    resp = await sign_in(hub, password="wrong password", expect=401)
    assert "locked" in await resp.text()
    # now even the right password is refused, with the reason and when to retry
    resp = await sign_in(hub, expect=429)
    text = await resp.text()
    assert "locked after too many failed sign-ins" in text and "Retry-After" in resp.headers
    # an admin's new password lifts the lock
    await sign_in(hub, "admin@example.com", "admin password")
    html = await (await hub.get("/inbox/admin/agents")).text()
    assert "agent@example.com until" in html
    resp = await hub.post("/inbox/admin/agents", data={"_csrf": csrf_of(html), "action": "password",
                                                       "agent_id": str(hub.ids["agent"]), "password": "a new password"},
                          allow_redirects=False)
    assert resp.status == 303
    hub.session.cookie_jar.clear()
    await sign_in(hub, password="a new password")


async def test_agents_cannot_open_admin_pages(hub):
    await sign_in(hub)
    # The knowledge base's pages are open to agents: they propose drafts (tests/kb/test_kb_editor.py).
    for path in ("/inbox/admin/agents", "/inbox/admin/tokens", "/inbox/admin/channels", "/inbox/admin/macros",
                 "/inbox/admin/forms"):
        resp = await hub.get(path)
        assert resp.status == 403, path
    html = await (await hub.get("/inbox")).text()
    resp = await hub.post("/inbox/admin/tokens", data={"_csrf": csrf_of(html), "action": "create", "name": "x",
                                                       "role": "integration"})
    assert resp.status == 403


async def test_admin_pages_manage_agents_tokens_macros(hub):
    await sign_in(hub, "admin@example.com", "admin password")
    for path in ("/inbox/admin/agents", "/inbox/admin/tokens", "/inbox/admin/channels", "/inbox/admin/macros",
                 "/inbox/admin/kb", "/inbox/admin/forms"):
        resp = await hub.get(path)
        assert resp.status == 200, (path, await resp.text())
    csrf = csrf_of(await (await hub.get("/inbox/admin/tokens")).text())
    resp = await hub.post("/inbox/admin/tokens", data={"_csrf": csrf, "action": "create", "name": "shop", "role": "integration"})
    assert resp.status == 201
    token = re.search(r'<code id="new-token">([^<]+)</code>', await resp.text()).group(1)
    assert token.startswith("shub_")
    listing = await (await hub.get("/inbox/admin/tokens")).text()
    assert token not in listing and "shop" in listing  # shown once only
    token_id = re.search(r'name="token_id" value="(\d+)"', listing).group(1)
    resp = await hub.post("/inbox/admin/tokens", data={"_csrf": csrf, "action": "revoke", "token_id": token_id})
    assert resp.status == 200 and "revoked" in await resp.text()
    resp = await hub.post("/inbox/admin/macros", data={"_csrf": csrf, "action": "create", "name": "Thanks",
                                                       "body": "Hi {{customer.name}}, this is {{agent.name}} on #{{conversation.id}}."})
    assert resp.status == 200 and "Thanks" in await resp.text()
    resp = await hub.post("/inbox/admin/agents", data={"_csrf": csrf, "action": "create", "email": "cy@example.com",
                                                       "name": "Cy", "password": "cy password", "role": "agent"})
    assert resp.status == 200 and "cy@example.com" in await resp.text()
    # the last admin cannot demote themselves
    resp = await hub.post("/inbox/admin/agents", data={"_csrf": csrf, "action": "role", "agent_id": str(hub.ids["admin"]),
                                                       "role": "agent"})
    assert resp.status == 409 and "last active admin" in await resp.text()


async def test_customer_text_is_escaped_everywhere(hub):
    r = store(hub.engine, sender=Sender("eve@example.com", f"Eve {XSS}"), subject=f"Hi {XSS}", text=f"Body {XSS}")
    add_note(hub.engine, r.conversation_id, Principal("agent", hub.ids["agent"], "agent", "agent@example.com"),
             f"note {XSS} @admin")
    await sign_in(hub)
    for path in ("/inbox?view=all", f"/inbox/c/{r.conversation_id}", f"/inbox/c/{r.conversation_id}/timeline",
                 "/inbox/rows?view=all"):
        html = await (await hub.get(path)).text()
        assert "<script>window.pwned" not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html, path


async def test_email_html_goes_into_a_sandboxed_frame(hub):
    r = store(hub.engine, text="plain", html='<p>Hello <b>there</b></p><script>alert(1)</script>')
    await sign_in(hub)
    html = await (await hub.get(f"/inbox/c/{r.conversation_id}")).text()
    frame = re.search(r'<iframe sandbox="" srcdoc="([^"]*)"', html)
    assert frame and "&lt;b&gt;there&lt;/b&gt;" in frame.group(1) and "script" not in frame.group(1)


async def test_inbox_views_unread_and_sort(hub):
    a = store(hub.engine, text="first question")
    b = store(hub.engine, sender=Sender("bo@example.com", "Bo"), subject="Refund", text="refund please")
    agent = Principal("agent", hub.ids["agent"], "agent", "agent@example.com")
    update_conversation(hub.engine, b.conversation_id, {"assignee_id": hub.ids["agent"], "priority": "urgent"}, agent)
    await sign_in(hub)
    mine = await (await hub.get("/inbox?view=mine")).text()
    assert "Refund" in mine and "first question" not in mine
    unassigned = await (await hub.get("/inbox?view=unassigned")).text()
    assert "first question" in unassigned and "Refund" not in unassigned  # first words when no subject
    assert unassigned.count('class="unread"') == 1
    await hub.get(f"/inbox/c/{a.conversation_id}")  # opening it marks it read
    unassigned = await (await hub.get("/inbox?view=unassigned")).text()
    assert 'class="unread"' not in unassigned
    by_priority = await (await hub.get("/inbox?view=all&sort=priority")).text()
    assert by_priority.index("Refund") < by_priority.index("first question")
    by_channel = await (await hub.get("/inbox?view=all&channel=telegram")).text()
    assert "No conversations here." in by_channel
    assert (await hub.get("/inbox?view=nope")).status == 422
    assert (await hub.get("/inbox?channel=fax")).status == 422
    found = await (await hub.get("/inbox?view=all&q=Refund")).text()
    assert "Refund" in found and "first question" not in found


async def test_reply_note_mentions_status_and_macro(hub):
    r = store(hub.engine, text="Where is order 7?")
    who = Principal("admin", hub.ids["admin"], "admin", "admin@example.com")
    macros.create_macro(hub.engine, "Hello", "Hi {{customer.name}}, {{agent.name}} here about #{{conversation.id}}.", who)
    macro_id = macros.list_macros(hub.engine)[0]["id"]
    await sign_in(hub)
    cid = r.conversation_id
    html = await (await hub.get(f"/inbox/c/{cid}?macro={macro_id}")).text()
    assert f"Hi Ana Silva, Bo Agent here about #{cid}." in html
    csrf = csrf_of(html)
    resp = await hub.post(f"/inbox/c/{cid}/reply", data={"_csrf": csrf, "text": "It ships today."}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith(f"/inbox/c/{cid}#m")
    resp = await hub.post(f"/inbox/c/{cid}/note", data={"_csrf": csrf, "text": "@admin can you check?"}, allow_redirects=False)
    assert resp.status == 303
    resp = await hub.post(f"/inbox/c/{cid}/update", data={"_csrf": csrf, "status": "resolved", "priority": "high",
                                                          "assignee": "me"}, allow_redirects=False)
    assert resp.status == 303
    html = await (await hub.get(f"/inbox/c/{cid}")).text()
    assert "It ships today." in html and '<mark class="mention">@admin</mark>' in html
    assert 'class="status status-resolved"' in html and "Bo Agent (me)</option>" in html
    for _ in range(100):  # the log channel delivers in the background
        if "delivery state-sent" in html:
            break
        await asyncio.sleep(0.05)
        html = await (await hub.get(f"/inbox/c/{cid}/timeline")).text()
    assert '<span class="delivery-state">sent</span>' in html
    resp = await hub.post(f"/inbox/c/{cid}/reply", data={"_csrf": csrf, "text": "  "})
    assert resp.status == 422 and "a reply needs text" in await resp.text()
    hub.session.cookie_jar.clear()
    await sign_in(hub, "admin@example.com", "admin password")
    listing = await (await hub.get("/inbox")).text()
    assert "Notes that mention you" in listing and "@admin can you check?" in listing


async def test_one_timeline_across_channels_with_calls_and_automatic_answers(hub):
    mail = store(hub.engine, subject="Order 7", text="Where is order 7?")
    tg = store(hub.engine, channel="telegram", external_id="tg-1", sender=Sender("4242", "Ana S", "telegram"),
               text="Any news?")
    # link the Telegram identity to the same customer, as a verified link would
    from hub.customers.profiles import merge_customers

    admin = Principal("agent", hub.ids["admin"], "admin", "admin@example.com")
    merge_customers(hub.engine, mail.customer_id, tg.customer_id, admin)
    call = store(hub.engine, channel="voice", external_id="call-1", sender=Sender("+15551234567", "Ana", "phone"),
                 text="[00:01] Agent: Hello, how can I help?\n[00:04] Customer: My order 7 is late.",
                 metadata={"call": {"direction": "inbound", "duration_seconds": 60}})
    merge_customers(hub.engine, mail.customer_id, call.customer_id, admin)
    await sign_in(hub)
    # three conversations of one customer: each shows its own messages, the others as related
    html = await (await hub.get(f"/inbox/c/{mail.conversation_id}")).text()
    pane = await (await hub.get(f"/inbox/c/{mail.conversation_id}/pane")).text()  # without the list beside it
    assert "Where is order 7?" in pane and "Any news?" not in pane
    assert f'<a href="/inbox/c/{tg.conversation_id}">' in pane and "Merge into this" in pane
    # the agent sees they are one matter and merges them here
    for other in (tg.conversation_id, call.conversation_id):
        resp = await hub.post(f"/inbox/c/{mail.conversation_id}/merge", data={"_csrf": csrf_of(html), "source": str(other)},
                              allow_redirects=False)
        assert resp.status == 303
    html = await (await hub.get(f"/inbox/c/{mail.conversation_id}")).text()
    assert "Where is order 7?" in html and "Any news?" in html and "Undo" in html
    assert 'class="chan chan-telegram">telegram' in html and 'class="chan chan-email">email' in html
    assert '<dt class="role-agent"><span class="at">00:01</span> Agent</dt>' in html
    assert '<dd class="role-customer">My order 7 is late.</dd>' in html


async def test_a_failed_delivery_shows_its_reason_and_can_be_retried(hub):
    from sqlalchemy import update

    from hub.store.models import Outbox

    r = store(hub.engine, text="hello")
    agent = Principal("agent", hub.ids["agent"], "agent", "agent@example.com")
    msg = reply(hub.engine, r.conversation_id, agent, "answer")
    with hub.engine.begin() as conn:
        conn.execute(update(Outbox.__table__).where(Outbox.__table__.c.message_id == msg["id"])
                     .values(status="dead", last_error="550 mailbox unavailable", attempts=8))
    await sign_in(hub)
    html = await (await hub.get(f"/inbox/c/{r.conversation_id}")).text()
    assert "delivery state-failed" in html and "550 mailbox unavailable" in html and "Retry delivery" in html
    resp = await hub.post(f"/inbox/messages/{msg['id']}/retry", data={"_csrf": csrf_of(html),
                          "conversation_id": str(r.conversation_id)}, allow_redirects=False)
    assert resp.status == 303
    for _ in range(100):
        html = await (await hub.get(f"/inbox/c/{r.conversation_id}/timeline")).text()
        if "delivery state-sent" in html:
            break
        await asyncio.sleep(0.05)
    assert "delivery state-sent" in html
    # a sent delivery cannot be retried
    resp = await hub.post(f"/inbox/messages/{msg['id']}/retry", data={"_csrf": csrf_of(await (await hub.get('/inbox')).text()),
                          "conversation_id": str(r.conversation_id)})
    assert resp.status == 409


async def test_merge_needs_admin_and_a_confirmation(hub):
    a = store(hub.engine, text="one")
    b = store(hub.engine, sender=Sender("ana.other@example.com", "Ana"), text="two")
    await sign_in(hub)
    assert (await hub.get(f"/inbox/customers/{a.customer_id}/merge?other={b.customer_id}")).status == 403
    hub.session.cookie_jar.clear()
    await sign_in(hub, "admin@example.com", "admin password")
    html = await (await hub.get(f"/inbox/customers/{a.customer_id}/merge?other={b.customer_id}")).text()
    assert "ana.other@example.com" in html
    csrf = csrf_of(html)
    resp = await hub.post(f"/inbox/customers/{a.customer_id}/merge", data={"_csrf": csrf, "source": str(b.customer_id)})
    assert resp.status == 422
    resp = await hub.post(f"/inbox/customers/{a.customer_id}/merge",
                          data={"_csrf": csrf, "source": str(b.customer_id), "confirm": "yes"})
    assert resp.status == 200 and "ana.other@example.com" in await resp.text()


async def test_attachments_download_only_for_agents(hub):
    from hub.contract.messages import Attachment

    r = store(hub.engine, hub.blobs, text="photo", attachments=(Attachment("pic.html", "text/html", b"<script>x</script>"),))
    await sign_in(hub)
    html = await (await hub.get(f"/inbox/c/{r.conversation_id}")).text()
    att = re.search(r'href="/inbox/attachments/(\d+)"', html).group(1)
    resp = await hub.get(f"/inbox/attachments/{att}")
    assert resp.status == 200 and await resp.read() == b"<script>x</script>"
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    hub.session.cookie_jar.clear()
    resp = await hub.get(f"/inbox/attachments/{att}", allow_redirects=False)
    assert resp.status == 303


async def test_logout_ends_the_session(hub):
    await sign_in(hub)
    html = await (await hub.get("/inbox")).text()
    resp = await hub.post("/inbox/logout", data={"_csrf": csrf_of(html)}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/inbox/login"
    resp = await hub.get("/inbox", allow_redirects=False)
    assert resp.status == 303


async def test_every_inbox_route_is_documented(hub):
    from hub.web.app import openapi_document

    # The reports and privacy pages live in the inbox too, documented by their own capability.
    documented = {(path, method) for path, ops in openapi_document()["paths"].items() if path.startswith("/inbox")
                  for method in ops}
    registered = {
        (r.resource.canonical, r.method.lower())
        for r in hub.app.router.routes()
        if r.method not in ("HEAD", "*") and r.resource.canonical.startswith("/inbox")
    }
    assert registered == documented, registered ^ documented
    css = await hub.get("/inbox/static/inbox.css")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    assert (await hub.get("/inbox/static/..%2Fpages.py")).status == 404


async def test_unknown_ids_and_unreadable_bodies_are_4xx_pages(hub):
    await sign_in(hub)
    for path in ("/inbox/c/999999", "/inbox/c/999999/timeline", "/inbox/customers/999999", "/inbox/attachments/999999"):
        resp = await hub.get(path)
        assert resp.status == 404 and resp.content_type == "text/html", path
    assert (await hub.get("/inbox/c/abc")).status == 422
    resp = await hub.post("/inbox/login", data=b"--b\r\n\xc2\xa8--b--\r\n",
                          headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert resp.status == 400 and "not a readable form" in await resp.text()


async def test_the_customer_panel_lists_their_orders_from_the_back_end(hub):
    # The embedded demo back end (adapters/demo_scm.py) has five orders of this address.
    r = store(hub.engine, sender=Sender("ana.silva@example.com", "Ana Silva"), text="Hello")
    await sign_in(hub)
    for url in (f"/inbox/customers/{r.customer_id}", f"/inbox/c/{r.conversation_id}"):
        html = await (await hub.get(url)).text()
        assert "Orders in the order system" in html and "A1001" in html, url
    # Someone the back end does not know: no section, and no error.
    other = store(hub.engine, sender=Sender("nobody@example.net", "Nobody"), text="Hi")
    html = await (await hub.get(f"/inbox/customers/{other.customer_id}")).text()
    assert "Orders in the order system" not in html and "did not answer" not in html
