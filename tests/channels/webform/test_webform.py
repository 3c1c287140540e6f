"""The web form channel: unit tests of its pure logic (definitions, tokens, validation, upload
checks, pages) and HTTP tests of /forms/{slug} through a real aiohttp server, on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import stat
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from channels.webform import token as form_token
from channels.webform.form import Field, FormConfigError, form_from_config, forms_from_config
from channels.webform.pages import render_embed_script, render_form
from channels.webform.uploads import check, safe_filename, sniff
from channels.webform.validation import (
    UploadedFile,
    UploadLimits,
    message_text,
    normalise_order_number,
    normalise_phone,
    to_message,
    valid_email,
    validate,
)
from hub.auth.accounts import create_agent
from hub.config.settings import FormField, FormSettings, Settings, _default_forms
from hub.contract import clock
from hub.contract.messages import InboundMessage, Sender
from hub.store.db import make_engine
from hub.web.app import create_app
from hub.web.keys import REGISTRY, WRITER
from tests.support.webform import PNG, token_of

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 32 + b"\xff\xd9"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
HTML_PAGE = b"<!doctype html><html><body><script>alert(1)</script></body></html>"
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256))
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64

CONTACT = form_from_config(_default_forms()[0])
TYPES = ("image/png", "image/jpeg", "image/gif", "application/pdf", "text/plain")
LIMITS = UploadLimits(max_bytes=1000, types=TYPES)
VALID = {
    "name": "Ana Silva",
    "email": "ana@example.com",
    "phone": "",
    "order": "A1001",
    "subject": "Where is my order?",
    "message": "It has not arrived.\nCan you check?",
}


# --- form definitions -----------------------------------------------------------------------------


def test_default_contact_form_is_served_as_configured():
    assert CONTACT.slug == "contact" and CONTACT.title == "Contact us"
    assert [f.type for f in CONTACT.fields] == ["text", "email", "phone", "order_number", "text", "textarea", "file"]
    assert CONTACT.field("order").plain_label == "Order number"


@pytest.mark.parametrize(
    "slug, fields, needle",
    [
        ("Contact Us", [FormField(name="email", label="Email", type="email")], "slug"),
        ("_assets", [FormField(name="email", label="Email", type="email")], "slug"),
        ("c", [FormField(name="_token", label="x", type="email")], "field name"),
        ("c", [FormField(name="homepage", label="x", type="email")], "field name"),
        ("c", [FormField(name="email", label="E", type="email"), FormField(name="email", label="E", type="text")], "twice"),
        ("c", [FormField(name="message", label="Message", type="textarea")], "email or a phone"),
    ],
)
def test_broken_form_definitions_are_refused_with_their_reason(slug, fields, needle):
    with pytest.raises(FormConfigError, match=needle):
        form_from_config(FormSettings(slug=slug, title="T", fields=fields))


def test_a_slug_configured_twice_is_refused():
    with pytest.raises(FormConfigError, match="twice"):
        forms_from_config(_default_forms() + _default_forms())


# --- tokens -----------------------------------------------------------------------------------------

SECRET = b"s" * 32


def test_token_round_trip_and_submission_id():
    issued = form_token.issue(SECRET, "contact")
    got = form_token.verify(SECRET, "contact", issued.value)
    assert got == issued
    assert got.submission_id == f"form-{issued.nonce}"
    assert form_token.issue(SECRET, "contact").nonce != issued.nonce


@pytest.mark.parametrize(
    "make",
    [
        lambda t: None,
        lambda t: "",
        lambda t: "garbage",
        lambda t: t.value[:-2] + ("AA" if not t.value.endswith("AA") else "BB"),  # signature altered
        lambda t: t.value.replace(f".{t.issued_at}.", f".{t.issued_at - 100}."),  # older time claimed
        lambda t: form_token.issue(b"x" * 32, "contact").value,  # another hub's secret
        lambda t: form_token.issue(SECRET, "other-form").value,  # another form
        lambda t: t.value.replace("v1.", "v2.", 1),
    ],
)
def test_forged_tokens_are_invalid(make):
    issued = form_token.issue(SECRET, "contact")
    with pytest.raises(form_token.TokenInvalid):
        form_token.verify(SECRET, "contact", make(issued))


def test_a_token_from_the_future_is_invalid_and_an_old_one_is_expired():
    future = form_token.issue(SECRET, "contact", now=clock.timestamp() + 3600)
    with pytest.raises(form_token.TokenInvalid):
        form_token.verify(SECRET, "contact", future.value)
    old = form_token.issue(SECRET, "contact", now=clock.timestamp() - form_token.MAX_AGE_SECONDS - 10)
    assert form_token.verify(SECRET, "contact", old.value).expired()
    assert not form_token.issue(SECRET, "contact").expired()


def test_secret_is_created_once_readable_by_owner_only(tmp_path):
    path = tmp_path / "data" / "secret.key"
    first = form_token.load_or_create_secret(path)
    assert len(first) == 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert form_token.load_or_create_secret(path) == first


# --- field validation ------------------------------------------------------------------------------


def test_a_valid_submission_becomes_a_webform_message():
    out = validate(CONTACT, VALID, {}, LIMITS)
    assert out.ok, out.errors
    msg = to_message(CONTACT, out, "form-abc")
    assert msg.channel == "webform" and msg.external_id == "form-abc"
    assert msg.sender == Sender("ana@example.com", "Ana Silva", "email")
    assert msg.subject == "Where is my order?"
    assert msg.html is None
    assert msg.text == "Your name: Ana Silva\nEmail: ana@example.com\nOrder number: A1001\n\nIt has not arrived.\nCan you check?"
    assert msg.metadata == {
        "form": "contact",
        "fields": {"name": "Ana Silva", "email": "ana@example.com", "order": "A1001", "subject": "Where is my order?"},
    }


def test_required_fields_are_reported_in_form_order_and_values_kept():
    out = validate(CONTACT, {"name": "  ", "email": "", "phone": "+44 20 7946 0958", "message": "hi"}, {}, LIMITS)
    assert list(out.errors) == ["name", "email", "subject"]
    assert "Your name" in out.errors["name"]
    assert out.typed["phone"] == "+44 20 7946 0958" and out.typed["message"] == "hi"


def test_the_phone_is_mentioned_and_the_email_stays_the_identity():
    out = validate(CONTACT, {**VALID, "phone": "+44 20 7946 0958"}, {}, LIMITS)
    msg = to_message(CONTACT, out, "form-1")
    assert msg.sender.address == "ana@example.com"
    assert "Phone: +442079460958" in msg.text


def test_without_an_email_the_phone_is_the_identity():
    form = form_from_config(
        FormSettings(
            slug="callback",
            title="Call me back",
            fields=[
                FormField(name="email", label="Email", type="email"),
                FormField(name="phone", label="Phone", type="phone"),
                FormField(name="message", label="Message", type="textarea", required=True),
            ],
        )
    )
    out = validate(form, {"phone": "+44 20 7946 0958", "message": "call me"}, {}, LIMITS)
    assert to_message(form, out, "form-2").sender == Sender("+442079460958", None, "phone")
    assert to_message(form, out, "form-2").subject == "Web form: Call me back"
    nobody = validate(form, {"message": "call me"}, {}, LIMITS)
    assert list(nobody.errors) == ["email"] and "email address or a phone number" in nobody.errors["email"]


@pytest.mark.parametrize(
    "address, ok",
    [
        ("ana@example.com", True),
        ("Ana.Silva+orders@shop.example.co.uk", True),
        ("o'brien@example.ie", True),
        ("ana@bücher.example", True),
        ("ana@example", False),
        ("ana@@example.com", False),
        ("ana example@example.com", False),
        ("@example.com", False),
        ("ana.@example.com", False),
        ("ana..b@example.com", False),
        ("ana@-example.com", False),
        ("ana@example.123", False),
        ("<ana@example.com>", False),
        ("a" * 65 + "@example.com", False),
    ],
)
def test_email_format(address, ok):
    assert valid_email(address) is ok


@pytest.mark.parametrize(
    "number, e164",
    [
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+1 (415) 555-0100", "+14155550100"),
        ("020 7946 0958", None),  # no country code: ambiguous
        ("+44 12", None),
        ("call me", None),
    ],
)
def test_phone_format(number, e164):
    assert normalise_phone(number) == e164


@pytest.mark.parametrize(
    "value, clean",
    [("A1001", "A1001"), ("#A1001", "A1001"), ("so-2026/17", "so-2026/17"), ("10042", "10042"),
     ("ABC", None), ("1", None), ("A1001!", None), ("<b>1</b>", None), ("1" * 41, None)],
)
def test_order_number_format(value, clean):
    assert normalise_order_number(value) == clean


def test_a_value_far_over_its_limit_is_refused_before_it_is_cleaned():
    """A message of 960,000 characters (control characters, combining marks) is not normalised and cleaned
    whole (the limit is 20,000 characters): it is refused, and only its start is shown again."""
    huge = "It has not arrived. \x01\u200be\u0301" * 40_000
    out = validate(CONTACT, {**VALID, "message": huge, "name": " \t" * 100_000}, {}, LIMITS)
    assert "at most 20000 characters (it has 960000)" in out.errors["message"]
    assert "at most 200 characters" in out.errors["name"]
    assert len(out.typed["message"]) <= 20_000 and out.typed["message"].startswith("It has not arrived. é")
    # Within the factor the value is cleaned first, as before: spaces collapse on a one-line field.
    assert validate(CONTACT, {**VALID, "name": "Ana" + " " * 1_000 + "Silva"}, {}, LIMITS).clean["name"] == "Ana Silva"


def test_format_errors_are_inline_per_field():
    out = validate(CONTACT, {**VALID, "email": "ana@", "phone": "12345", "order": "??"}, {}, LIMITS)
    assert set(out.errors) == {"email", "phone", "order"}
    assert "name@example.com" in out.errors["email"]
    assert "country code" in out.errors["phone"]
    assert "order number" in out.errors["order"]


def test_text_is_kept_as_text_without_control_characters():
    out = validate(CONTACT, {**VALID, "name": "Ana\x00 \u202eSilva\n", "message": "<b>hi</b>\r\nthere\x07"}, {}, LIMITS)
    assert out.clean["name"] == "Ana Silva"
    assert out.clean["message"] == "<b>hi</b>\nthere"


def test_overlong_text_is_refused():
    out = validate(CONTACT, {**VALID, "subject": "x" * 201}, {}, LIMITS)
    assert "at most 200" in out.errors["subject"]


# --- uploads ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, declared, stored",
    [
        (PNG, "image/png", "image/png"),
        (JPEG, "image/jpeg", "image/jpeg"),
        (JPEG, "image/jpg", "image/jpeg"),
        (GIF, "image/gif", "image/gif"),
        (PDF, "application/pdf", "application/pdf"),
        (b"order A1001\nthanks\n", "text/plain; charset=utf-8", "text/plain"),
        (PNG, "application/octet-stream", "image/png"),  # a type that claims nothing: the content decides
        (PNG, None, "image/png"),
    ],
)
def test_accepted_files_are_typed_by_their_content(data, declared, stored):
    out = validate(CONTACT, VALID, {"attachment": UploadedFile("../../x/photo.bin", declared, data)}, LIMITS)
    assert out.ok, out.errors
    att = out.attachments["attachment"]
    assert att.content_type == stored and att.data == data and att.filename == "photo.bin"
    assert to_message(CONTACT, out, "f").attachments == (att,)


@pytest.mark.parametrize(
    "data, declared, needle",
    [
        (HTML_PAGE, "image/png", "does not match"),  # the declared type lies
        (PDF, "image/png", "does not match"),
        (PNG, "application/pdf", "does not match"),
        (ZIP, "application/zip", "not accepted"),
        (ZIP, "image/png", "not accepted"),
        (ELF, "application/octet-stream", "not accepted"),
        (b"\xff\xfe\x00h\x00i", "text/plain", "not accepted"),  # not UTF-8 text
        (b"", "image/png", "empty"),
    ],
)
def test_refused_files(data, declared, needle):
    out = validate(CONTACT, VALID, {"attachment": UploadedFile("x.png", declared, data)}, LIMITS)
    assert needle in out.errors["attachment"]
    assert "attachment" not in out.attachments


def test_file_size_limit():
    too_big = validate(CONTACT, VALID, {"attachment": UploadedFile("a.txt", "text/plain", b"a" * 1001)}, LIMITS)
    assert "larger than 1000 bytes" in too_big.errors["attachment"]
    cut = validate(CONTACT, VALID, {"attachment": UploadedFile("a.txt", "text/plain", b"", too_large=True)}, LIMITS)
    assert "larger than" in cut.errors["attachment"]
    exact = validate(CONTACT, VALID, {"attachment": UploadedFile("a.txt", "text/plain", b"a" * 1000)}, LIMITS)
    assert exact.ok


def test_an_upload_type_not_configured_is_refused():
    out = validate(CONTACT, VALID, {"attachment": UploadedFile("a.pdf", "application/pdf", PDF)}, UploadLimits(1000, ("image/png",)))
    assert "not accepted" in out.errors["attachment"] and "PNG" in out.errors["attachment"]


def test_no_file_chosen_is_no_attachment_and_a_required_file_is_asked_for():
    empty = UploadedFile("", "application/octet-stream", b"")
    assert validate(CONTACT, VALID, {"attachment": empty}, LIMITS).ok
    form = form_from_config(
        SimpleNamespace(slug="proof", title="Proof", fields=[
            Field("email", "Email", "email", True), Field("receipt", "Receipt", "file", True)])
    )
    out = validate(form, {"email": "a@example.com"}, {"receipt": empty}, LIMITS)
    assert "Choose a file" in out.errors["receipt"]


def test_sniff_and_safe_filename():
    assert sniff(PNG) == "image/png" and sniff(ELF) is None and sniff("héllo".encode()) == "text/plain"
    assert safe_filename("C:\\Users\\ana\\inv<o>ice.pdf", "application/pdf") == "inv_o_ice.pdf"
    assert safe_filename("", "image/png") == "attachment.png"
    assert safe_filename("..", "text/plain") == "attachment.txt"
    assert len(safe_filename("a" * 500 + ".pdf", "application/pdf")) == 200
    assert check(PNG, "image/png", TYPES, 10)[1] is not None  # over the limit


# --- pages --------------------------------------------------------------------------------------------

XSS = '"><script>window.pwned=1</script><img src=x onerror="window.pwned=2">'


def test_the_form_page_is_accessible_and_escapes_what_was_typed():
    out = validate(CONTACT, {**VALID, "name": XSS, "email": "nope"}, {}, LIMITS)
    html = render_form(CONTACT, token="tok", upload_types=TYPES, max_upload_bytes=1000, values=out.typed, errors=out.errors)
    assert '<html lang="en">' in html
    assert "<title>Error: Contact us</title>" in html
    assert "<script>window" not in html and "<img src=x" not in html
    assert 'value="&#34;&gt;&lt;script&gt;window.pwned=1&lt;/script&gt;' in html
    # every input has its label; the error is tied to its input
    for f in CONTACT.fields:
        assert f'<label for="{f.html_id}">' in html and f'id="{f.html_id}"' in html
    email_input = re.search(r"<input type=\"email\"[^>]*>", html).group(0)
    assert 'aria-describedby="field-email-error"' in email_input and 'aria-invalid="true"' in email_input
    assert '<p class="error-message" id="field-email-error">' in html
    assert '<a href="#field-email">' in html  # the summary links to the field
    assert re.search(r'<input type="text" id="field-name" name="name" required', html)


def test_message_text_of_a_form_with_two_long_fields():
    form = form_from_config(
        SimpleNamespace(slug="rma", title="Returns", fields=[
            Field("email", "Email", "email", True),
            Field("problem", "What is wrong", "textarea", True),
            Field("wish", "What you would like", "textarea")])
    )
    out = validate(form, {"email": "a@example.com", "problem": "broken", "wish": "refund"}, {}, LIMITS)
    assert message_text(form, out) == "Email: a@example.com\n\nWhat is wrong:\nbroken\n\nWhat you would like:\nrefund"


def test_embed_script_inserts_a_frame_of_the_embeddable_page():
    script = render_embed_script(CONTACT, "https://help.shop.example/")
    assert 'var frameUrl = "https://help.shop.example/forms/contact/embed";' in script
    assert 'var origin = "https://help.shop.example";' in script
    assert "document.createElement(\"iframe\")" in script


# --- over HTTP ------------------------------------------------------------------------------------------


class FormClient:
    def __init__(self, client: TestClient, app, settings: Settings, agent: dict):
        self.client = client
        self.app = app
        self.settings = settings
        self.agent = agent

    async def page(self, path="/forms/contact") -> tuple[str, str]:
        resp = await self.client.get(path)
        assert resp.status == 200, await resp.text()
        html = await resp.text()
        return html, token_of(html)

    async def post(self, fields: dict, *, token: str | None = "fresh", files=None, path="/forms/contact"):
        if token == "fresh":
            _, token = await self.page(path)
        form = aiohttp.FormData(default_to_multipart=True)  # what browsers send for this form
        if token is not None:
            form.add_field("_token", token)
        for name, value in fields.items():
            form.add_field(name, value)
        for name, (filename, content_type, data) in (files or {}).items():
            form.add_field(name, data, filename=filename, content_type=content_type)
        resp = await self.client.post(path, data=form)
        return resp, await resp.text()

    def count(self, sql: str) -> int:
        engine = make_engine(self.settings.effective_database_url)
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql)).scalar_one()
        finally:
            engine.dispose()

    def stored(self) -> tuple[int, int]:
        """(web form messages, outbox rows)."""
        return (
            self.count("SELECT count(*) FROM message WHERE channel = 'webform'"),
            self.count("SELECT count(*) FROM outbox"),
        )

    async def conversation(self, cid: int) -> dict:
        resp = await self.client.get(f"/api/v1/conversations/{cid}", headers=self.agent)
        assert resp.status == 200, await resp.text()
        return await resp.json()


def reference_of(html: str) -> int:
    return int(re.search(r'<strong class="reference">#(\d+)</strong>', html).group(1))


async def start(settings: Settings) -> FormClient:
    # Routing off: these tests count what the form itself stores and sends (an order number asked
    # about in a form gets automatic answers of its own: tests/scm).
    settings = settings.model_copy(update={"scm": settings.scm.model_copy(update={"enabled": False})})
    app = create_app(settings)
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "agent@example.com", "agent password", role="agent")
    engine.dispose()
    client = TestClient(TestServer(app))
    await client.start_server()
    resp = await client.post("/api/v1/auth/login", json={"email": "agent@example.com", "password": "agent password"})
    assert resp.status == 200
    token = (await resp.json())["token"]
    client.session.cookie_jar.clear()
    return FormClient(client, app, settings, {"Authorization": f"Bearer {token}"})


@pytest.fixture
async def web(settings):
    fc = await start(settings.model_copy(update={"form_min_fill_seconds": 0.0, "form_rate_per_minute": 1000}))
    yield fc
    await fc.client.close()


async def test_get_renders_the_form_with_its_fields(web):
    resp = await web.client.get("/forms/contact")
    html = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/html"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert '<html lang="en">' in html and "<title>Contact us</title>" in html
    assert 'enctype="multipart/form-data"' in html and 'action="/forms/contact"' in html
    for name in ("name", "email", "phone", "order", "subject", "message", "attachment"):
        assert f'name="{name}"' in html
    assert 'type="email"' in html and 'type="tel"' in html and 'type="file"' in html and "<textarea" in html
    assert '<div class="hp" aria-hidden="true">' in html and 'tabindex="-1"' in html
    css = await web.client.get("/forms/_assets/webform.css")
    assert css.status == 200 and css.content_type == "text/css"
    missing = await web.client.get("/forms/no-such-form")
    assert missing.status == 404 and "Form not found" in await missing.text()


async def test_a_submission_becomes_a_conversation_with_a_confirmation_email(web):
    resp, html = await web.post(
        {**VALID, "phone": "+44 20 7946 0958"}, files={"attachment": ("photo.png", "image/png", PNG)}
    )
    assert resp.status == 200, html
    cid = reference_of(html)
    assert "ana@example.com" in html and "reply to that email" in html

    listing = await (await web.client.get("/api/v1/conversations", headers=web.agent)).json()
    assert [c["id"] for c in listing["items"]] == [cid]
    conv = await web.conversation(cid)
    assert conv["channel"] == "webform" and conv["subject"] == "Where is my order?"
    assert conv["customer"]["name"] == "Ana Silva"
    inbound, confirmation = conv["messages"]
    assert inbound["direction"] == "inbound" and inbound["channel"] == "webform"
    assert inbound["sender"] == {"kind": "email", "address": "ana@example.com", "name": "Ana Silva"}
    assert inbound["text"].startswith("Your name: Ana Silva\nEmail: ana@example.com\nPhone: +442079460958\nOrder number: A1001")
    assert inbound["text"].endswith("\n\nIt has not arrived.\nCan you check?")
    assert inbound["html"] is None
    assert [(a["filename"], a["content_type"], a["size"]) for a in inbound["attachments"]] == [("photo.png", "image/png", len(PNG))]
    assert confirmation["direction"] == "outbound" and confirmation["channel"] == "email"
    assert f"[#{cid}]" in confirmation["subject"] and f"#{cid}" in confirmation["text"]
    assert "reply to this email" in confirmation["text"]
    assert "It has not arrived" not in confirmation["text"]  # no visitor input in mail the hub sends

    engine = make_engine(web.settings.effective_database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT channel, payload, message_id FROM outbox")).all()
    engine.dispose()
    assert len(rows) == 1
    channel, payload, message_id = rows[0]
    payload = payload if isinstance(payload, dict) else json.loads(payload)
    assert channel == "email" and payload["channel"] == "email"
    assert payload["recipient"] == "ana@example.com"
    assert payload["subject"] == f"We have received your message [#{cid}]"
    assert payload["conversation_id"] == cid and message_id == confirmation["id"]


async def test_the_customers_email_reply_threads_into_the_form_conversation(web):
    _, html = await web.post(VALID)
    cid = reference_of(html)
    reply = InboundMessage(
        "email",
        "<reply-1@mail.example>",
        Sender("Ana@Example.com", "Ana Silva"),
        "Also: it should be gift-wrapped.",
        subject=f"Re: We have received your message [#{cid}]",
    )
    result = await web.app[WRITER].ingest(reply)
    assert result.conversation_id == cid
    conv = await web.conversation(cid)
    assert [m["channel"] for m in conv["messages"]] == ["webform", "email", "email"]


async def test_a_double_submit_is_stored_once(web):
    _, token = await web.page()
    first, html1 = await web.post(VALID, token=token)
    again, html2 = await web.post({**VALID, "message": "sent twice"}, token=token)
    assert first.status == again.status == 200
    assert reference_of(html1) == reference_of(html2)
    assert web.stored() == (1, 1)


async def test_without_or_with_a_forged_token_nothing_is_stored(web):
    other_secret = form_token.issue(b"z" * 32, "contact").value
    _, good = await web.page()
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    for token in (None, "", "v1.x.1.y", other_secret, forged):
        resp, html = await web.post(VALID, token=token)
        assert resp.status == 403, html
        assert "security token" in html and 'href="/forms/contact"' in html
    assert web.stored() == (0, 0)
    assert stat.S_IMODE(os.stat(web.settings.data_dir / "secret.key").st_mode) == 0o600


async def test_a_filled_honeypot_pretends_success_and_stores_nothing(web):
    resp, html = await web.post({**VALID, "homepage": "http://spam.example"})
    assert resp.status == 200 and "Thank you" in html
    assert 'class="reference"' not in html
    assert web.stored() == (0, 0)


async def test_invalid_input_is_shown_again_with_errors_and_values(web):
    values = {**VALID, "name": 'Ana "The Boss" <Silva>', "email": "ana@", "message": "line 1\nline 2 & more"}
    resp, html = await web.post(values, files={"attachment": ("doc.png", "image/png", HTML_PAGE)})
    assert resp.status == 422
    assert "<title>Error: Contact us</title>" in html and "There is a problem" in html
    assert 'value="Ana &#34;The Boss&#34; &lt;Silva&gt;"' in html
    assert 'value="ana@"' in html and ">line 1\nline 2 &amp; more</textarea>" in html
    assert 'id="field-email-error"' in html and 'aria-describedby="field-email-error"' in html
    assert 'aria-describedby="field-attachment-hint field-attachment-error"' in html
    assert "does not match" in html and "choose it again" in html
    assert web.stored() == (0, 0)
    # the same page, corrected, goes through
    resp, html = await web.post({**values, "email": "ana@example.com"}, token=token_of(html))
    assert resp.status == 200 and reference_of(html)


async def test_a_file_over_the_limit_is_refused_next_to_its_field(settings):
    fc = await start(settings.model_copy(update={"form_min_fill_seconds": 0.0, "form_max_upload_bytes": 2000}))
    try:
        resp, html = await fc.post(VALID, files={"attachment": ("big.txt", "text/plain", b"a" * 3000)})
        assert resp.status == 422 and "larger than" in html
        resp, html = await fc.post(VALID, files={"attachment": ("huge.txt", "text/plain", b"a" * (fc.settings.max_request_bytes + 10_000))})
        assert resp.status == 413 and "too large" in html
        assert fc.stored() == (0, 0)
        resp, html = await fc.post(VALID, files={"attachment": ("ok.txt", "text/plain", b"a" * 2000)})
        assert resp.status == 200
    finally:
        await fc.client.close()


async def test_too_fast_a_submission_is_not_stored(settings):
    fc = await start(settings.model_copy(update={"form_min_fill_seconds": 30.0}))
    try:
        resp, html = await fc.post(VALID)
        assert resp.status == 422 and "quicker than a person" in html
        assert 'value="Ana Silva"' in html
        assert fc.stored() == (0, 0)
    finally:
        await fc.client.close()


async def test_an_expired_page_is_renewed_not_refused(web):
    old = form_token.issue(web.app[REGISTRY].get("webform").secret, "contact", now=clock.timestamp() - form_token.MAX_AGE_SECONDS - 60)
    resp, html = await web.post(VALID, token=old.value)
    assert resp.status == 422 and "open for a long time" in html
    assert token_of(html) != old.value and 'value="Ana Silva"' in html
    assert web.stored() == (0, 0)


async def test_rate_limit_per_client(settings):
    fc = await start(settings.model_copy(update={"form_min_fill_seconds": 0.0, "form_rate_per_minute": 2}))
    try:
        for _ in range(2):
            resp, _ = await fc.post(VALID)
            assert resp.status == 200
        resp, html = await fc.post(VALID)
        assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
        assert "Too many messages" in html
        assert fc.stored() == (2, 2)
    finally:
        await fc.client.close()


async def test_a_submission_without_an_email_gets_no_confirmation_email(settings):
    forms = [
        FormSettings(slug="callback", title="Call me back", fields=[
            FormField(name="name", label="Name", type="text"),
            FormField(name="email", label="Email", type="email"),
            FormField(name="phone", label="Phone", type="phone"),
            FormField(name="message", label="Message", type="textarea", required=True),
        ])
    ]
    fc = await start(settings.model_copy(update={"form_min_fill_seconds": 0.0, "forms": forms}))
    try:
        assert (await fc.client.get("/forms/contact")).status == 404
        resp, html = await fc.post({"name": "Chloé", "phone": "+44 20 7946 0958", "message": "Call me"}, path="/forms/callback")
        assert resp.status == 200 and "+442079460958" in html
        conv = await fc.conversation(reference_of(html))
        assert conv["messages"][0]["sender"]["kind"] == "phone"
        assert conv["subject"] == "Web form: Call me back"
        assert fc.stored() == (1, 0)
    finally:
        await fc.client.close()


async def test_the_embeddable_form_may_be_framed_and_posts_to_itself(web):
    resp = await web.client.get("/forms/contact/embed")
    html = await resp.text()
    assert resp.status == 200
    assert "frame-ancestors *" in resp.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in resp.headers
    assert 'action="/forms/contact/embed"' in html and "/forms/_assets/frame.js" in html
    post, page = await web.post(VALID, path="/forms/contact/embed")
    assert post.status == 200 and reference_of(page) and "X-Frame-Options" not in post.headers
    script = await web.client.get("/forms/contact/embed.js")
    assert script.status == 200 and script.content_type == "text/javascript"
    assert "/forms/contact/embed" in await script.text()
    assert (await web.client.get("/forms/nope/embed.js")).status == 404


async def test_unreadable_bodies_are_refused(web):
    resp = await web.client.post("/forms/contact", data=b"{}", headers={"Content-Type": "application/json"})
    assert resp.status == 400 and "could not be read" in await resp.text()
    # an urlencoded post (a form without files, sent by a script) is read too
    _, token = await web.page()
    resp = await web.client.post("/forms/contact", data={**VALID, "_token": token})
    assert resp.status == 200 and reference_of(await resp.text())
