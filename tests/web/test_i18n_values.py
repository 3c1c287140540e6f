"""The inbox in the agent's language beyond its own words: refusals the capabilities write in
English (a form's error, an error page, the JSON a page's script shows) and values of the data
(channels, order and line states, escalation states, survey reasons) are shown in Chinese to an
agent who reads Chinese; the API's errors stay English."""

from __future__ import annotations

import re

import aiohttp_jinja2
import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.auth.accounts import create_agent
from hub.contract import i18n
from hub.contract.errors import RejectedInput
from hub.contract.i18n import N_, Word
from hub.contract.messages import InboundMessage, Sender
from hub.ingest.pipeline import ingest
from hub.store.db import make_engine
from hub.web.app import create_app
from hub.web.keys import INBOX_JINJA
from tests.support.inbox import csrf_of, login_token

ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


@pytest.fixture
async def hub(settings):
    settings.sla.assignment = "off"
    settings.csat.channels = ["email"]
    app = create_app(settings)
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "agent@example.com", "agent password", role="agent", name="Bo Agent")
    client = TestClient(TestServer(app))
    await client.start_server()
    client.engine = engine
    page = await client.get("/inbox/login", headers=ZH)
    resp = await client.post("/inbox/login", data={"email": "agent@example.com", "password": "agent password",
                                                   "_csrf": login_token(await page.text()), "next": "/inbox"},
                             headers=ZH, allow_redirects=False)
    assert resp.status == 303
    client.csrf = csrf_of(await (await client.get("/inbox", headers=ZH)).text())  # the agent keeps Chinese from here on
    yield client
    await client.close()
    engine.dispose()


def _message(engine, channel, external_id, address, name, text, **kw):
    return ingest(engine, InboundMessage(channel=channel, external_id=external_id, sender=Sender(address, name), text=text, **kw))


# --- the parts: a template and its values ---------------------------------------------------------------


def test_an_error_keeps_its_english_and_is_worded_in_the_readers_language_from_its_parts():
    exc = RejectedInput(N_("%(what)s cannot be empty"), params={"what": Word(N_("the note"))})
    assert exc.message == "the note cannot be empty" and str(exc) == exc.message
    with i18n.use("zh"):
        assert i18n.fill(exc.template, exc.params) == "备注不能为空"
        # A value that is data, not interface text, is never translated, even when it reads like a word we have.
        assert i18n.fill(N_("this customer already has %(address)s"), {"address": "open"}) == "该客户已有 open"
        # A template no catalog has is shown in English, with its values.
        assert i18n.fill("%(n)s things went wrong", {"n": 2}) == "2 things went wrong"


# --- refusals in the inbox ----------------------------------------------------------------------------------


async def test_a_refused_address_and_a_too_long_note_are_said_in_chinese_on_the_page_and_to_the_script(hub):
    ana = _message(hub.engine, "email", "<v-1@example.com>", "ana@example.com", "Ana Silva", "Where is my parcel?")
    ben = _message(hub.engine, "email", "<v-2@example.com>", "ben@example.com", "Ben Okafor", "Hello")
    edit = f"/inbox/customers/{ben.customer_id}/edit"
    # Without a script: the customer's page again, with the problem said in Chinese (409).
    resp = await hub.post(edit, data={"action": "add_address", "kind": "email", "address": "ana@example.com", "_csrf": hub.csrf})
    html = await resp.text()
    assert resp.status == 409 and "属于另一位客户（Ana Silva，#" in html and "belongs to another customer" not in html
    # The panel's script gets JSON; it shows error.message as it is, so the message is in Chinese too.
    resp = await hub.post(edit, data={"action": "note", "text": "x" * 10_001, "_csrf": hub.csrf}, headers={"X-Panel": "1"})
    body = await resp.json()
    assert resp.status == 422 and body["error"]["message"] == "备注最多 10,000 个字符（当前为 10,001 个）"
    assert body["error"]["code"] == "rejected_input"  # the code stays the stable English one
    # An error page: an unknown conversation.
    resp = await hub.get("/inbox/c/999999", headers=ZH)
    assert resp.status == 404 and "会话 999999 不存在" in await resp.text()
    # The list's scripts: a tag too long, a bulk change that fails on one conversation.
    resp = await hub.post(f"/inbox/c/{ana.conversation_id}/tags", data={"tag": "t" * 200, "_csrf": hub.csrf},
                          headers={"Accept": "application/json"})
    assert resp.status == 422 and (await resp.json())["error"]["message"] == "标签最多 50 个字符"
    resp = await hub.post("/inbox/bulk", data=[("ids", str(ana.conversation_id)), ("ids", "999998"), ("action", "assign"),
                                               ("assignee", "424242"), ("_csrf", hub.csrf)], headers={"Accept": "application/json"})
    body = await resp.json()
    assert "results" in body, body
    results = body["results"]
    assert [r["error"]["message"] for r in results] == ["客服 424242 不存在或已停用", "会话 999998 不存在"]


async def test_the_api_keeps_its_errors_in_english_whatever_the_browser(hub):
    resp = await hub.post("/api/v1/auth/login", json={"email": "agent@example.com", "password": "agent password"})
    token = (await resp.json())["token"]
    resp = await hub.get("/api/v1/conversations/999999", headers={"Authorization": f"Bearer {token}", **ZH})
    assert resp.status == 404 and (await resp.json())["error"]["message"] == "conversation 999999 does not exist"


# --- values of the data -------------------------------------------------------------------------------------


async def test_channels_and_survey_reasons_are_shown_in_chinese(hub):
    _message(hub.engine, "webform", "form-1", "dmitri@example.org", "Dmitri Volkov", "Which is right?", subject="Delivery")
    call = _message(hub.engine, "voice", "call-1", "+44 20 7946 0958", "Chloé Martin", "Customer: charged twice")
    chat = _message(hub.engine, "telegram", "tg-1", "48151623", "Ben Okafor", "In stock?")
    rows = await (await hub.get("/inbox?view=all", headers=ZH)).text()
    channels = re.findall(r'<span class="chan chan-(\w+)">([^<]*)</span>', rows)
    assert {"webform": "网页表单", "voice": "电话", "telegram": "Telegram"}.items() <= dict(channels).items(), channels
    page = await (await hub.get(f"/inbox/c/{call.conversation_id}", headers=ZH)).text()
    assert '<span class="chan chan-voice">电话</span>' in page
    # Surveys go on email only here: the reason names the channel, in Chinese.
    control = await (await hub.get(f"/inbox/c/{chat.conversation_id}/resolve?fragment=1", headers=ZH)).text()
    assert "Telegram渠道不发送满意度调查" in control and "no surveys on" not in control


async def test_order_and_line_states_escalations_and_back_end_errors_are_shown_in_chinese(hub):
    env = aiohttp_jinja2.get_env(hub.server.app, app_key=INBOX_JINJA)
    facts = {"facts": [
        {"kind": "order", "subject": "SO-4711", "disclosed": False, "error": None,
         "payload": {"state": "on_hold", "late": False, "lines": [{"quantity": 2, "name": "Kettle", "state": "backordered"}]}},
        {"kind": "order", "subject": "ZZ-1", "disclosed": False, "error": "unknown_order", "error_message": "no order ZZ-1", "payload": None},
    ], "drafts": [{"reason": "order_on_hold", "text": "Your order is on hold."}, {"reason": "too_many_orders", "text": "..."}],
        "escalations": [{"id": 3, "status": "in_progress", "external_reference": None}]}
    with i18n.use("zh"):
        html = env.get_template("_facts.html").render(facts=facts)
    assert "<dd>已暂挂" in html and "2 × Kettle <span class=\"muted\">(缺货待补)</span>" in html
    assert "订单系统中没有这个订单" in html and 'title="no order ZZ-1"' in html  # the order system's own words kept aside
    assert "<strong>处理中</strong>" in html
    assert '<span class="tag">订单已暂挂</span>' in html and '<span class="tag">订单过多</span>' in html
    with i18n.use("en"):
        html = env.get_template("_facts.html").render(facts=facts)
    assert "<dd>on hold" in html and "(backordered)" in html and "the order system does not know this order" in html


def test_timeline_events_stored_in_english_are_shown_in_chinese_with_what_people_wrote_kept():
    from hub.web.inbox.words import event_text

    with i18n.use("zh"):
        assert event_text("Escalated to the back office (webhook): parcel lost, customer is upset") == \
            "已升级至后台（Webhook）：parcel lost, customer is upset"
        assert event_text("Back office on escalation #4: in progress (reference CASE-9) — we called DHL") == \
            "后台处理升级 #4：处理中 (reference CASE-9) — we called DHL"
        assert event_text("Assigned to Bo Agent (rule: key customers)") == "已分配给 Bo Agent（rule: key customers）"
        assert event_text("SLA warning (demo high): first response due at 2026-12-04T10:00+00:00") == \
            "SLA 预警（demo high）：首次响应将于 2026-12-04T10:00+00:00 到期"
        assert event_text("Message moved here from #12 by agent:3") == "agent:3 将消息从 #12 移到了这里"
        assert event_text("Something the hub may say one day") == "Something the hub may say one day"
        assert event_text("x" * 100_000 + " (") == "x" * 100_000 + " ("  # long stored texts: no pattern blows up
