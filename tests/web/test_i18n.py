"""Interface text in English and Chinese: choosing a language from a browser's header, the agent's own choice (first sign-in, the header's switch), the sign-in page following the
browser, every string of the code translated in the Chinese catalog, and key pages with no English
left in their header and navigation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from hub.auth.accounts import create_agent
from hub.contract import i18n
from hub.store.db import make_engine
from hub.web.app import create_app
from tests.support.inbox import csrf_of, login_token

ROOT = Path(__file__).resolve().parents[2]
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}


# --- choosing a language -----------------------------------------------------------------------------


@pytest.mark.parametrize("header, expected", [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
    ("en-GB,en;q=0.9,zh;q=0.8", "en"),
    ("fr-FR,fr;q=0.9,zh-TW;q=0.5", "zh"),  # the only language of ours the reader takes
    ("en;q=0.2, zh-Hans;q=0.7", "zh"),  # by quality, not by order
    ("zh;q=0", "en"),  # q=0: "not this one"
    ("de-DE", "en"),
    ("", "en"),
    (None, "en"),
    ("zh;q=abc, ;;;, =,", "en"),
])
def test_accept_language_picks_the_best_language_we_have(header, expected):
    assert i18n.negotiate(header) == expected


def test_a_huge_accept_language_is_read_in_bounded_time():
    header = ",".join(["xx;q=0.1"] * 200_000) + ",zh"
    assert i18n.negotiate(header) == "en"  # only the first entries count: the tail is never parsed
    assert i18n.negotiate("zh-" + "a" * 1_000_000) == "zh"


def test_the_current_language_is_scoped_and_falls_back_to_english():
    assert i18n.current() == "en" and i18n.gettext("Sign out") == "Sign out"
    with i18n.use("zh-CN"):
        assert i18n.gettext("Sign out") == "退出登录"
        assert i18n.gettext("a string that no catalog has") == "a string that no catalog has"
    with i18n.use("klingon"):
        assert i18n.current() == "en"
    assert i18n.current() == "en"


# --- the catalogs are complete ---------------------------------------------------------------------------


def _extracted() -> set[str]:
    """Every msgid of the code and templates, extracted the way `make messages` does."""
    method_map, options_map = parse_mapping_cfg(open(ROOT / "babel.cfg"))
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2), "N_": None}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(ROOT), method_map, options_map,
                                                                       keywords=keywords):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_string_of_the_code_has_a_chinese_translation():
    catalog = read_po(open(i18n.LOCALE_DIR / "zh" / "LC_MESSAGES" / "messages.po", "rb"), locale="zh")
    translated = {(m.id if isinstance(m.id, str) else m.id[0]) for m in catalog
                  if m.id and (m.string if isinstance(m.string, str) else m.string[0]) and "fuzzy" not in m.flags}
    used = _extracted()
    assert len(used) > 30
    missing = sorted(used - translated)
    assert not missing, f"run `make messages` and translate in hub/locale/zh/LC_MESSAGES/messages.po: {missing}"


def test_placeholders_survive_translation():
    catalog = read_po(open(i18n.LOCALE_DIR / "zh" / "LC_MESSAGES" / "messages.po", "rb"), locale="zh")
    for m in catalog:
        if not m.id:
            continue
        ids = [m.id] if isinstance(m.id, str) else list(m.id)
        strings = [m.string] if isinstance(m.string, str) else list(m.string)
        wanted = sorted(set(re.findall(r"%\(\w+\)s", ids[0])))
        for text in strings:
            assert sorted(set(re.findall(r"%\(\w+\)s", text))) == wanted, m.id


# --- the inbox in the agent's language --------------------------------------------------------------------


@pytest.fixture
async def hub(settings):
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
    yield client
    await client.close()
    engine.dispose()


async def _sign_in(client, email, password, headers=None):
    page = await client.get("/inbox/login", headers=headers)
    token = login_token(await page.text())
    resp = await client.post("/inbox/login", data={"email": email, "password": password, "_csrf": token, "next": "/inbox"},
                             headers=headers, allow_redirects=False)
    assert resp.status == 303, await resp.text()


def _stored_language(engine, agent_id):
    from sqlalchemy import select

    from hub.store.models import Agent

    with engine.connect() as conn:
        return conn.execute(select(Agent.__table__.c.language).where(Agent.__table__.c.id == agent_id)).scalar()


async def test_the_sign_in_page_follows_the_browser(hub):
    zh = await (await hub.get("/inbox/login", headers=ZH)).text()
    assert '<html lang="zh-Hans">' in zh and "登录收件箱" in zh and "Sign in" not in zh
    en = await (await hub.get("/inbox/login", headers={"Accept-Language": "en-US"})).text()
    assert '<html lang="en">' in en and "Sign in to the inbox" in en
    token = login_token(en)  # the latest page's token is the cookie's
    resp = await hub.post("/inbox/login", data={"email": "agent@example.com", "password": "wrong", "_csrf": token},
                          headers=ZH)
    assert resp.status == 401 and "邮箱或密码错误" in await resp.text()


async def test_first_sign_in_keeps_the_browsers_language_and_the_header_switches_it(hub):
    assert _stored_language(hub.engine, hub.ids["agent"]) is None
    await _sign_in(hub, "agent@example.com", "agent password", headers=ZH)
    page = await (await hub.get("/inbox", headers=ZH)).text()
    assert "退出登录" in page and _stored_language(hub.engine, hub.ids["agent"]) == "zh"
    # From now on the agent's choice wins over the browser's header.
    page = await (await hub.get("/inbox", headers={"Accept-Language": "en"})).text()
    assert "退出登录" in page and "Sign out" not in page
    resp = await hub.post("/inbox/language", data={"language": "en", "next": "/inbox?view=all", "_csrf": csrf_of(page)},
                          allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/inbox?view=all"
    assert _stored_language(hub.engine, hub.ids["agent"]) == "en"
    page = await (await hub.get("/inbox", headers=ZH)).text()
    assert "Sign out" in page and '<html lang="en">' in page


async def test_the_language_switch_refuses_bad_input_and_forged_posts(hub):
    await _sign_in(hub, "agent@example.com", "agent password")
    page = await (await hub.get("/inbox")).text()
    csrf = csrf_of(page)
    for bad in ("fr", "zh-CN<script>", "", "x" * 10_000):
        resp = await hub.post("/inbox/language", data={"language": bad, "_csrf": csrf}, allow_redirects=False)
        assert resp.status == 422, bad
    assert _stored_language(hub.engine, hub.ids["agent"]) == "en"
    resp = await hub.post("/inbox/language", data={"language": "zh"}, allow_redirects=False)  # no CSRF token
    assert resp.status == 403
    resp = await hub.post("/inbox/language", data={"language": "zh", "_csrf": csrf, "next": "https://evil.example/"},
                          allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/inbox"
    hub.session.cookie_jar.clear()
    resp = await hub.post("/inbox/language", data={"language": "zh", "_csrf": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/inbox/login")


# English words that must not be left in a Chinese page's header, navigation and buttons.
ENGLISH = re.compile(r"\b(Inbox|Reports|Admin|Sign out|Sign in|Set away|Set available|Available|Away|Back|Search|Save|"
                     r"Agents|Tokens|Channels|Revoke|Deactivate|Create|Delete|Merge|Cancel|Apply|Export|Download|"
                     r"Resolve|Snooze|Tag|Tags|Add|Remove|Publish|Unpublish|Preview|Title|Notifications|Mark all read|"
                     r"Reply|Close|Keyboard shortcuts|Attributes?|Value|Order|Total|Action|Conversation|Customer)\b")


def _chrome(html: str) -> str:
    """The header, the navigation, the headings, buttons and labels of a page: the interface's own
    words (customer data and agents' names left out)."""
    parts = re.findall(r"<header.*?</header>|<nav.*?</nav>|<h[1-3][^>]*>.*?</h[1-3]>|<button[^>]*>.*?</button>|"
                       r"<label[^>]*>.*?</label>|<th[^>]*>.*?</th>|<title>.*?</title>", html, re.S)
    text = re.sub(r"<[^>]+>", " ", " ".join(parts))
    return text.replace("servicehub", "").replace("Ada Admin", "").replace("admin@example.com", "")


@pytest.mark.parametrize("path", ["/inbox", "/inbox/c/{conversation}", "/inbox/customers/{customer}",
                                  "/inbox/customers/{customer}/privacy", "/inbox/reports", "/inbox/admin/agents",
                                  "/inbox/admin/tokens", "/inbox/admin/channels", "/inbox/admin/macros", "/inbox/admin/kb",
                                  "/inbox/admin/forms", "/inbox/admin/kb/new", "/inbox/c/{conversation}/resolve",
                                  "/inbox/notifications/all"])
async def test_key_pages_in_chinese_keep_no_english_in_their_chrome(hub, path):
    from hub.contract.messages import InboundMessage, Sender
    from hub.ingest.pipeline import ingest
    from hub.notifications import notify
    from hub.store.db import write_tx

    stored = ingest(hub.engine, InboundMessage(channel="email", external_id="<zh-1@example.com>", subject="Parcel",
                                               sender=Sender("ana@example.com", "Ana Silva"), text="Where is my parcel?"))
    with write_tx(hub.engine) as conn:  # the notifications list shows one (its text is a button)
        notify(conn, hub.ids["admin"], "assignment", f"Conversation #{stored.conversation_id} was assigned to you",
               dedupe_key="zh-test", conversation_id=stored.conversation_id)
    path = path.format(conversation=stored.conversation_id, customer=stored.customer_id)
    await _sign_in(hub, "admin@example.com", "admin password", headers=ZH)
    resp = await hub.get(path, headers=ZH)
    assert resp.status == 200, path
    html = await resp.text()
    assert '<html lang="zh-Hans">' in html, path
    chrome = _chrome(html)
    assert "收件箱" in chrome, path
    left = ENGLISH.findall(chrome)
    assert not left, f"{path}: {left}"


async def test_notifications_are_stored_in_english_and_shown_in_the_agents_language(hub):
    from hub.notifications import notify
    from hub.store.db import write_tx

    with write_tx(hub.engine) as conn:
        notify(conn, hub.ids["agent"], "assignment", "Conversation #7 was assigned to you (rule: key customers)",
               dedupe_key="a", conversation_id=None)
        notify(conn, hub.ids["agent"], "mention", "Ada Admin mentioned you in conversation #7: can you call her?",
               dedupe_key="b", conversation_id=None)
        notify(conn, hub.ids["agent"], "sla_warning", "SLA warning on conversation #7: first response due 2026-12-04 10:00 UTC",
               dedupe_key="c", conversation_id=None)
        notify(conn, hub.ids["agent"], "snooze_back", "Something new the hub may say one day", dedupe_key="d")
    await _sign_in(hub, "agent@example.com", "agent password", headers=ZH)
    page = await (await hub.get("/inbox/notifications/all", headers=ZH)).text()
    assert "会话 #7 已分配给你（rule: key customers）" in page
    assert "Ada Admin 在会话 #7 中提到了你：can you call her?" in page
    assert "会话 #7 的 SLA 预警：首次响应将于 2026-12-04 10:00 UTC 到期" in page
    assert "Something new the hub may say one day" in page  # an unknown text is shown as stored
    bell = await (await hub.get("/inbox/notifications", headers=ZH)).json()
    assert "会话 #7 已分配给你（rule: key customers）" in [n["text"] for n in bell["items"]]
    resp = await hub.post("/inbox/language", data={"language": "en", "_csrf": csrf_of(page)}, allow_redirects=False)
    assert resp.status == 303
    page = await (await hub.get("/inbox/notifications/all")).text()
    assert "Conversation #7 was assigned to you (rule: key customers)" in page


def test_every_word_the_scripts_ask_for_is_in_the_pages_words():
    """static/*.js show words with T(name, English): every name must be in _i18n.html, which the
    Chinese pages render (else the script shows the English)."""
    templates = ROOT / "hub" / "web" / "inbox" / "templates"
    block = (templates / "_i18n.html").read_text()
    named = set(re.findall(r'^\s*"([a-z0-9-]+)": _\(', block, re.M))
    for script in (ROOT / "hub" / "web" / "inbox" / "static").glob("*.js"):
        asked = set(re.findall(r'\bT\("([^"]+)", "', script.read_text()))
        assert asked <= named, f"{script.name}: {sorted(asked - named)}"
    assert '{% include "_i18n.html" %}' in (templates / "base.html").read_text()


async def test_chinese_pages_give_their_scripts_the_words_and_english_pages_need_none(hub):
    import json

    await _sign_in(hub, "agent@example.com", "agent password", headers=ZH)
    page = await (await hub.get("/inbox", headers=ZH)).text()
    words = json.loads(re.search(r'<script type="application/json" id="i18n">(.*?)</script>', page, re.S).group(1))
    assert words["reply-sent"] == "回复已发送。" and words["resolved"] == "已解决"
    assert words["name-is-viewing-this-conversation"] == "%(name)s 正在查看此会话。"  # the script fills the name
    resp = await hub.post("/inbox/language", data={"language": "en", "_csrf": csrf_of(page)}, allow_redirects=False)
    assert resp.status == 303
    assert 'id="i18n"' not in await (await hub.get("/inbox")).text()


# --- customers' pages and messages in their language ------------------------------------------------------


@pytest.fixture
async def forms(settings):
    settings = settings.model_copy(update={"form_min_fill_seconds": 0.0, "form_rate_per_minute": 1000,
                                           "scm": settings.scm.model_copy(update={"enabled": False})})
    app = create_app(settings)
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "agent@example.com", "agent password", role="agent")
    client = TestClient(TestServer(app))
    await client.start_server()
    resp = await client.post("/api/v1/auth/login", json={"email": "agent@example.com", "password": "agent password"})
    client.api = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    client.engine = engine
    client.session.cookie_jar.clear()
    yield client
    await client.close()
    engine.dispose()


async def _post_form(client, fields: dict, headers: dict):
    import aiohttp

    html = await (await client.get("/forms/contact", headers=headers)).text()
    data = aiohttp.FormData(default_to_multipart=True)
    data.add_field("_token", re.search(r'name="_token" value="([^"]+)"', html).group(1))
    for name, value in fields.items():
        data.add_field(name, value)
    resp = await client.post("/forms/contact", data=data, headers=headers)
    return resp, await resp.text()


async def test_the_web_form_speaks_the_visitors_language_and_so_does_its_confirmation(forms):
    page = await (await forms.get("/forms/contact", headers=ZH)).text()
    assert '<html lang="zh-Hans">' in page and ">提交</button>" in page and "（必填）" in page
    assert "Send</button>" not in page and "(required)" not in page
    english = await (await forms.get("/forms/contact")).text()
    assert '<html lang="en">' in english and ">Send</button>" in english

    resp, html = await _post_form(forms, {"email": "not an address", "message": ""}, ZH)
    assert resp.status == 422 and "有问题需要处理" in html and "请输入邮箱地址" in html

    resp, html = await _post_form(forms, {"name": "王芳", "email": "wang@example.com", "subject": "订单", "message": "我的订单还没到。"}, ZH)
    assert resp.status == 200 and "谢谢，我们已收到您的留言" in html and "wang@example.com" in html
    cid = int(re.search(r'<strong class="reference">#(\d+)</strong>', html).group(1))
    conv = await (await forms.get(f"/api/v1/conversations/{cid}", headers=forms.api)).json()
    inbound, confirmation = conv["messages"]
    from sqlalchemy import select

    from hub.store.models import Message

    with forms.engine.connect() as conn:
        metadata = conn.execute(select(Message.__table__.c.metadata).where(Message.__table__.c.id == inbound["id"])).scalar()
    assert metadata["language"] == "zh"
    assert confirmation["subject"] == f"我们已收到您的留言 [#{cid}]"
    assert f"您的受理编号是 #{cid}" in confirmation["text"] and "Thank you" not in confirmation["text"]


async def test_a_visitors_input_stays_escaped_inside_translated_sentences(forms):
    hostile = '<script>alert(1)</script>@example.com'
    resp, html = await _post_form(forms, {"email": hostile, "message": "x"}, ZH)
    assert resp.status == 422 and "<script>alert(1)" not in html and "&lt;script&gt;" in html


def test_the_survey_follows_the_customers_language():
    from types import SimpleNamespace

    from hub.csat import surveys

    zh = surveys.words("zh")
    assert zh["send"] == "提交" and zh["labels"][5] == "5 - 非常满意" and "{ref}" in zh["subject"]
    assert surveys.words("fr")["send"] == "Send"
    assert surveys.customer_language(SimpleNamespace(text="我的订单在哪里？", metadata={})) == "zh"
    # Written in English on a page the visitor read in Chinese: still Chinese (the page's language).
    assert surveys.customer_language(SimpleNamespace(text="order A1001?", metadata={"language": "zh"})) == "zh"
    assert surveys.customer_language(SimpleNamespace(text="Where is my order?", metadata=None)) == "en"


def test_a_form_written_in_chinese_is_shown_in_chinese_whatever_the_browser():
    from types import SimpleNamespace

    from channels.webform.channel import page_language
    from channels.webform.form import form_from_config
    from channels.webform.pages import render_form
    from hub.config.settings import FormField, FormSettings

    form = form_from_config(FormSettings(slug="kefu", title="联系我们", lang="zh-CN",
                                         fields=[FormField(name="email", label="邮箱", type="email", required=True)]))
    english_browser = SimpleNamespace(headers={"Accept-Language": "en-US,en;q=0.9"})
    assert page_language(form, english_browser) == "zh"
    with i18n.use(page_language(form, english_browser)):
        html = render_form(form, token="t", upload_types=[], max_upload_bytes=1000)
    assert '<html lang="zh-CN">' in html and ">提交</button>" in html and "（必填）" in html
    english_form = form_from_config(FormSettings(slug="contact", title="Contact", fields=[
        FormField(name="email", label="Email", type="email")]))
    assert page_language(english_form, english_browser) == "en"
    assert page_language(english_form, SimpleNamespace(headers={"Accept-Language": "zh-TW"})) == "zh"
