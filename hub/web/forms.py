"""Public web forms at /forms/{slug}: thin handlers over channels/webform (which decides what a
submission means) and the hub's one ingest path. What happens to a POST, in order:

  rate limit per client (429) -> read the multipart body within size limits (413)
  -> form token signed by this hub for this form (403) -> honeypot (a bot: pretend success)
  -> token age: expired (re-render with a fresh token) or too fast (re-render) -> field
  validation (re-render, 422) -> ingest -> confirmation email through the outbox -> confirmation.

The routes are listed in channels/webform/__init__.py, with how to embed a form on another site.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import BodyPartReader, web
from aiohttp.hdrs import CONTENT_TYPE
from sqlalchemy import Engine, select, update

from channels.webform import token as form_token
from channels.webform.form import HONEYPOT_FIELD, TOKEN_FIELD, Form, forms_from_config
from channels.webform.pages import (
    ASSETS_PATH,
    STATIC,
    form_path,
    render_confirmation,
    render_embed_script,
    render_form,
    render_notice,
)
from channels.webform.validation import MAX_TEXTAREA, UploadedFile, UploadLimits, summary, to_message, validate
from hub.store.db import write_tx
from hub.contract.errors import RejectedInput
from hub.store.models import Direction, Message, Outbox, utcnow
from hub.outbox.queue import enqueue
from hub.web.ratelimit import RateLimiter
from hub.ingest.hub_link import ingest_message
from hub.web.capability import ApiDoc, Capability
from hub.web.http import client_key
from hub.web.keys import ENGINE, SETTINGS, WORKER
from hub.web.keys import WEBFORMS as STATE

log = logging.getLogger(__name__)

message_t = Message.__table__
outbox_t = Outbox.__table__

# A text part is never longer than this (a textarea's limit in 4-byte characters): more is cut,
# and validation then tells the visitor the text is too long.
TEXT_PART_BYTES = 4 * MAX_TEXTAREA
CHUNK = 64 * 1024
# Frames of the embeddable page may sit on any site: the company's, wherever it is hosted.
EMBED_CSP = "default-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors *"
PAGE_CSP = "default-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
# aiohttp 3.12+ has typed response keys; older ones take a plain string.
_EMBEDDABLE = web.ResponseKey("webform_embeddable", bool) if hasattr(web, "ResponseKey") else "webform_embeddable"


@dataclass
class FormsState:
    forms: dict[str, Form]
    limiter: RateLimiter
    secret_path: Path
    _secret: bytes | None = field(default=None, repr=False)

    @property
    def secret(self) -> bytes:
        # Read on first use, not at start: an app that never serves a form never creates the key.
        if self._secret is None:
            self._secret = form_token.load_or_create_secret(self.secret_path)
        return self._secret


def add_routes(app: web.Application) -> None:
    settings = app[SETTINGS]
    app[STATE] = FormsState(
        forms=forms_from_config(settings.forms),  # a broken form definition stops the start, with its reason
        limiter=RateLimiter(settings.form_rate_per_minute),
        secret_path=settings.data_dir / "secret.key",
    )
    slug = "/forms/{slug:[a-z0-9][a-z0-9-]*}"
    for name, content_type in ASSETS.items():
        app.router.add_get(f"{ASSETS_PATH}/{name}", _asset(name, content_type))
    app.router.add_get(slug, show_form)
    app.router.add_post(slug, submit)
    app.router.add_get(slug + "/embed", show_form)
    app.router.add_post(slug + "/embed", submit)
    app.router.add_get(slug + "/embed.js", embed_script)
    app.on_response_prepare.append(_allow_framing)


async def _allow_framing(request: web.Request, response: web.StreamResponse) -> None:
    # The security middleware adds X-Frame-Options: DENY to every response that has none; the
    # embeddable page is the one meant to be framed (its CSP frame-ancestors says where).
    if response.get(_EMBEDDABLE):
        response.headers.popall("X-Frame-Options", None)


ASSETS = {"webform.css": "text/css", "frame.js": "text/javascript"}


def _asset(name: str, content_type: str):
    body = (STATIC / name).read_bytes()

    async def serve(request: web.Request) -> web.Response:
        return web.Response(
            body=body, content_type=content_type, charset="utf-8", headers={"Cache-Control": "public, max-age=3600"}
        )

    return serve


# --- pages ------------------------------------------------------------------------------------


def _is_embed(request: web.Request) -> bool:
    return request.path.endswith("/embed")


def _page(request: web.Request, html: str, status: int = 200, *, headers: dict | None = None, cache: str = "no-store") -> web.Response:
    embed = _is_embed(request)
    response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8", headers=headers)
    response.headers["Content-Security-Policy"] = EMBED_CSP if embed else PAGE_CSP
    response.headers["Cache-Control"] = cache
    if embed:
        response[_EMBEDDABLE] = True
    return response


def _form_of(request: web.Request) -> Form | None:
    return request.app[STATE].forms.get(request.match_info["slug"])


def _not_found(request: web.Request) -> web.Response:
    html = render_notice(
        "Form not found",
        "There is no form at this address. Please check the link you followed.",
        embed=_is_embed(request),
    )
    return _page(request, html, 404)


def _limits(settings) -> UploadLimits:
    return UploadLimits(max_bytes=settings.form_max_upload_bytes, types=tuple(settings.form_upload_types))


def _form_page(request: web.Request, form: Form, token: str, status: int = 200, **kwargs) -> web.Response:
    settings = request.app[SETTINGS]
    html = render_form(
        form,
        token=token,
        upload_types=settings.form_upload_types,
        max_upload_bytes=settings.form_max_upload_bytes,
        embed=_is_embed(request),
        **kwargs,
    )
    # private, no-cache and not no-store: the back button shows the page from history with the
    # same token, so sending it again is recognised as the same submission.
    return _page(request, html, status, cache="private, no-cache" if status == 200 else "no-store")


async def show_form(request: web.Request) -> web.Response:
    form = _form_of(request)
    if form is None:
        return _not_found(request)
    issued = form_token.issue(request.app[STATE].secret, form.slug)
    return _form_page(request, form, issued.value)


async def embed_script(request: web.Request) -> web.Response:
    form = _form_of(request)
    if form is None:
        return web.Response(status=404, text="no such form", content_type="text/plain")
    script = render_embed_script(form, request.app[SETTINGS].public_url)
    return web.Response(
        text=script,
        content_type="text/javascript",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=300"},
    )


# --- reading a submission ---------------------------------------------------------------------


class BodyTooLarge(Exception):
    pass


class UnreadableBody(Exception):
    pass


@dataclass
class Posted:
    values: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)


def body_limit(form: Form, settings) -> int:
    """The most a submission may send: the text budget plus, per file field, twice the file
    limit, so a file somewhat over its limit gets an error next to its field, not a bare 413."""
    return settings.max_request_bytes + 2 * settings.form_max_upload_bytes * len(form.file_fields)


async def _read_part(part: BodyPartReader, keep: int, budget: int) -> tuple[bytes, bool, int]:
    """(the first `keep` bytes, whether there were more, bytes read). Reads the whole part so the
    next one can be read, but raises BodyTooLarge past `budget`."""
    kept = bytearray()
    seen = 0
    while True:
        chunk = await part.read_chunk(CHUNK)
        if not chunk:
            return bytes(kept), seen > keep, seen
        seen += len(chunk)
        if seen > budget:
            raise BodyTooLarge()
        if len(kept) < keep:
            kept += chunk[: keep - len(kept)]


async def read_submission(request: web.Request, form: Form, settings) -> Posted:
    """The form's fields from the body; parts the form does not define are read and dropped."""
    limit = body_limit(form, settings)
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge()
    files = {f.name for f in form.file_fields}
    texts = {f.name for f in form.fields if f.type != "file"} | {TOKEN_FIELD, HONEYPOT_FIELD}
    posted = Posted()
    if request.content_type == "application/x-www-form-urlencoded":
        try:
            data = await request.post()  # bounded by the app's client_max_size
        except web.HTTPRequestEntityTooLarge:
            raise BodyTooLarge() from None
        for name in texts:
            value = data.get(name)
            if isinstance(value, str):
                posted.values[name] = value
        return posted
    if request.content_type != "multipart/form-data":
        raise UnreadableBody("the form must be sent as multipart/form-data")
    try:
        reader = await request.multipart()
        total = 0
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise UnreadableBody("nested multipart bodies are not accepted")
            name = part.name or ""
            budget = limit - total
            if name in files and name not in posted.files:
                data, over, seen = await _read_part(part, settings.form_max_upload_bytes, budget)
                posted.files[name] = UploadedFile(
                    filename=part.filename,
                    content_type=part.headers.get(CONTENT_TYPE),
                    data=b"" if over else data,
                    too_large=over,
                )
            elif name in texts and name not in posted.values:
                data, _, seen = await _read_part(part, TEXT_PART_BYTES, budget)
                posted.values[name] = data.decode("utf-8", "replace")
            else:
                _, _, seen = await _read_part(part, 0, budget)
            total += seen
    except (ValueError, AssertionError) as exc:  # aiohttp's words for a malformed multipart body
        raise UnreadableBody(str(exc) or "malformed multipart body") from None
    return posted


# --- the confirmation email ---------------------------------------------------------------------

CONFIRMATION_SUBJECT = "We have received your message [#{ref}]"
# Deliberately none of the visitor's input: anyone can type anyone's address into a public form,
# and a confirmation that echoed the message would let them mail arbitrary text through the hub.
CONFIRMATION_TEXT = """Hello,

Thank you for contacting us. We have received your message and will answer you as soon as we can.

Your reference is #{ref}.

To add anything, simply reply to this email: your reply continues the same conversation.
If you did not write to us, you can ignore this email.
"""


def confirmation_key(submission_id: str) -> str:
    return f"webform-confirmation:{submission_id}"


def queue_confirmation(engine: Engine, conversation_id: int, recipient: str, submission_id: str) -> str:
    """Queue the confirmation email of a submission: an outbound message on channel "email" in
    the form's conversation, with [#id] in the subject so the customer's reply threads back.
    Idempotent per submission; returns the address the confirmation goes (or went) to."""
    key = confirmation_key(submission_id)
    subject = CONFIRMATION_SUBJECT.format(ref=conversation_id)
    text = CONFIRMATION_TEXT.format(ref=conversation_id)
    payload = {
        "conversation_id": conversation_id,
        "channel": "email",
        "recipient": recipient,
        "text": text,
        "html": None,
        "subject": subject,
        "reply_to": [],
        "thread_key": None,
    }
    with write_tx(engine) as conn:
        # The outbox row first: its unique idempotency key settles a race between two posts of
        # the same page, and the loser adds nothing.
        outbox_id = enqueue(conn, kind="message", channel="email", payload=payload, idempotency_key=key)
        if outbox_id is None:
            existing = conn.execute(select(outbox_t.c.payload).where(outbox_t.c.idempotency_key == key)).scalar_one()
            return existing.get("recipient", recipient)
        now = utcnow()
        message_id = conn.execute(
            message_t.insert()
            .values(
                conversation_id=conversation_id,
                direction=Direction.outbound,
                channel="email",
                subject=subject,
                text=text,
                sent_at=now,
                created_at=now,
                metadata={"automatic": "webform_confirmation"},
            )
            .returning(message_t.c.id)
        ).scalar_one()
        conn.execute(update(outbox_t).where(outbox_t.c.id == outbox_id).values(message_id=message_id))
    return recipient


# --- the OpenAPI document ---------------------------------------------------------------------


def openapi_paths() -> dict:
    """These routes in the hub's OpenAPI document (hub/web/openapi.py merges them in): pages for
    browsers, not JSON, but documented like every route so the contract test can hold them to it."""
    page = {"type": "string"}
    router_404 = {"description": "no such form", "content": {
        "text/html": {"schema": page}, "text/plain": {"schema": page},
        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}

    def html(description: str) -> dict:
        return {"description": description, "content": {"text/html": {"schema": page}}}

    slug = {"name": "slug", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}}
    submission = {
        "type": "object",
        "description": "the form's fields by name (files as parts with a filename), its token and the honeypot",
        "properties": {TOKEN_FIELD: {"type": "string"}, HONEYPOT_FIELD: {"type": "string", "maxLength": 0}},
        "additionalProperties": True,
    }

    def operations(where: str) -> dict:
        return {
            "get": {"summary": f"The form {where}", "tags": ["web forms"], "security": [], "parameters": [slug],
                    "responses": {"200": html("the form"), "404": router_404}},
            "post": {
                "summary": f"Send the form {where}",
                "tags": ["web forms"], "security": [], "parameters": [slug],
                "requestBody": {"required": True, "content": {
                    "multipart/form-data": {"schema": submission},
                    "application/x-www-form-urlencoded": {"schema": submission}}},
                "responses": {
                    "200": html("the confirmation with the conversation reference"),
                    "400": {"description": "the body is not a form", "content": {
                        "text/html": {"schema": page}, "text/plain": {"schema": page}}},
                    "403": html("the form token is missing or invalid; nothing stored"),
                    "404": router_404,
                    "413": html("the files are too large"),
                    "422": html("the form again, with its errors and the values kept"),
                    "429": html("too many submissions from this client; see Retry-After"),
                },
            },
        }

    def asset(content_type: str) -> dict:
        return {"get": {"summary": "A static file of the form pages", "tags": ["web forms"], "security": [],
                        "responses": {"200": {"description": "the file", "content": {content_type: {"schema": page}}}}}}

    return {
        "/forms/{slug}": operations("as a page of its own"),
        "/forms/{slug}/embed": operations("for an iframe on another site"),
        "/forms/{slug}/embed.js": {"get": {
            "summary": "A script that inserts the embeddable form where it is included",
            "tags": ["web forms"], "security": [], "parameters": [slug],
            "responses": {"200": {"description": "the script", "content": {"text/javascript": {"schema": page}}},
                          "404": router_404}}},
        **{f"{ASSETS_PATH}/{name}": asset(content_type) for name, content_type in ASSETS.items()},
    }


# --- the submission ---------------------------------------------------------------------------


async def submit(request: web.Request) -> web.Response:
    form = _form_of(request)
    if form is None:
        return _not_found(request)
    app, settings, state = request.app, request.app[SETTINGS], request.app[STATE]
    embed = _is_embed(request)
    back = form_path(form, embed=embed)

    wait = state.limiter.check(client_key(request))
    if wait:
        seconds = max(1, int(wait + 0.999))
        log.info("web form %s: rate limit for %s", form.slug, client_key(request))
        html = render_notice(
            "Too many messages",
            f"You have sent several messages in a short time. Please wait {seconds} seconds, then go back and send your message again.",
            "If you use the browser's back button, what you typed is usually still there.",
            back=back, lang=form.lang, embed=embed,
        )
        return _page(request, html, 429, headers={"Retry-After": str(seconds)})

    try:
        posted = await read_submission(request, form, settings)
    except BodyTooLarge:
        html = render_notice(
            "Your message is too large",
            "The files you attached are too large to send. Please go back and attach smaller files.",
            back=back, lang=form.lang, embed=embed,
        )
        return _page(request, html, 413)
    except UnreadableBody as exc:
        log.info("web form %s: unreadable body: %s", form.slug, exc)
        html = render_notice(
            "Your message could not be read",
            "Please send it with the form on this page.",
            back=back, lang=form.lang, embed=embed,
        )
        return _page(request, html, 400)

    try:
        token = form_token.verify(state.secret, form.slug, posted.values.get(TOKEN_FIELD))
    except form_token.TokenInvalid as exc:
        log.info("web form %s: refused a submission without a valid token (%s)", form.slug, exc)
        html = render_notice(
            "This form could not be sent",
            "Your message was not sent because the form's security token is missing or invalid. "
            "This happens when a form is sent from another website or the page was altered.",
            "Please open the form again, fill it in and send it.",
            back=back, back_text="Open the form again", lang=form.lang, embed=embed,
        )
        return _page(request, html, 403)

    if posted.values.get(HONEYPOT_FIELD, "").strip():
        # A person never sees this field; whatever filled it is a bot. It is told all went well,
        # so it learns nothing, and nothing is stored.
        log.info("web form %s: honeypot filled, submission dropped", form.slug)
        return _page(request, render_confirmation(form, reference=None, embed=embed))

    outcome = validate(form, posted.values, posted.files, _limits(settings))
    resend_file = bool(posted.files) and any(u.data or u.too_large for u in posted.files.values())
    page_token, notice = token.value, None
    if token.expired():
        page_token = form_token.issue(state.secret, form.slug).value
        notice = "This page was open for a long time, so it had to be renewed. Please check your message and send it again."
    elif token.age() < settings.form_min_fill_seconds:
        notice = "That was quicker than a person usually fills in this form. Please check your message and press Send again."
    if notice is not None or not outcome.ok:
        return _form_page(
            request, form, page_token, 422,
            values=outcome.typed, errors=outcome.errors, notice=notice, resend_file=resend_file,
        )

    message = to_message(form, outcome, token.submission_id)
    try:
        result = await ingest_message(app, message)
    except RejectedInput as exc:
        log.info("web form %s: ingest refused the submission: %s", form.slug, exc.message)
        return _form_page(
            request, form, page_token, 422,
            values=outcome.typed, errors={}, notice=f"Your message could not be accepted: {exc.message}",
            resend_file=resend_file,
        )
    email = None
    if outcome.contact_kind == "email":
        email = await asyncio.to_thread(
            queue_confirmation, app[ENGINE], result.conversation_id, outcome.contact, token.submission_id
        )
        app[WORKER].wake()
    html = render_confirmation(
        form,
        reference=result.conversation_id,
        email=email,
        phone=outcome.contact if outcome.contact_kind == "phone" else None,
        rows=summary(form, outcome),
        embed=embed,
    )
    return _page(request, html)


capability = Capability("webforms", routes=add_routes, openapi=lambda: ApiDoc(openapi_paths()), requires=("ingest", "outbox"))
