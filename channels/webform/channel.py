"""The web form channel: serves the public forms (routes below, mounted by the hub through the
channel contract) and hands each submission to the hub's one ingest path. What happens to a POST,
in order:

  rate limit per client (429) -> read the multipart body within size limits (413)
  -> form token signed by this hub for this form (403) -> honeypot (a bot: pretend success)
  -> token age: expired (re-render with a fresh token) or too fast (re-render) -> field
  validation (re-render, 422) -> ingest -> confirmation email through the hub's outbox -> confirmation.

Receive only: a form has no way back, so replies to its conversations go by email (the hub decides
that) and send() fails for good if it is ever asked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from channels.base import Delivery, HubLink, PermanentFailure, TemporaryFailure
from channels.webform import token as form_token
from channels.webform.confirmation import METADATA, confirmation
from channels.webform.form import HONEYPOT_FIELD, TOKEN_FIELD, Form, forms_from_config
from channels.webform.openapi import ASSETS
from channels.webform.pages import (
    ASSETS_PATH,
    STATIC,
    form_path,
    render_confirmation,
    render_embed_script,
    render_form,
    render_notice,
)
from channels.webform.submission import BodyTooLarge, UnreadableBody, read_submission
from channels.webform.validation import CHANNEL, UploadLimits, summary, to_message, validate
from hub.contract import i18n
from hub.contract.errors import RejectedInput
from hub.contract.i18n import gettext as _
from hub.contract.messages import OutboundMessage

log = logging.getLogger(__name__)

# Frames of the embeddable page may sit on any site: the company's, wherever it is hosted.
EMBED_CSP = "default-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors *"
PAGE_CSP = "default-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
# aiohttp 3.12+ has typed response keys; older ones take a plain string.
_EMBEDDABLE = web.ResponseKey("webform_embeddable", bool) if hasattr(web, "ResponseKey") else "webform_embeddable"
CANNOT_SEND = "the web form channel cannot deliver messages: a form has no way back; reply by email"


@dataclass(frozen=True)
class FormLimits:
    """What a submission may be: the text budget of a request, and the files."""

    max_request_bytes: int = 1_048_576
    max_upload_bytes: int = 10 * 1_048_576
    upload_types: tuple[str, ...] = ()
    # Faster than this (seconds from showing the form) is not a person typing.
    min_fill_seconds: float = 0.0
    submissions_per_minute: int = 10


@dataclass
class WebFormChannel:
    forms: dict[str, Form]
    secret_path: Path
    public_url: str = "http://127.0.0.1:8080"
    limits: FormLimits = field(default_factory=FormLimits)
    name: str = CHANNEL
    hub: HubLink | None = field(default=None, repr=False)
    _secret: bytes | None = field(default=None, repr=False)

    @property
    def secret(self) -> bytes:
        # Read on first use, not at start: a hub that never serves a form never creates the key.
        if self._secret is None:
            self._secret = form_token.load_or_create_secret(self.secret_path)
        return self._secret

    # --- the channel contract ------------------------------------------------------------------

    async def start(self, hub: HubLink) -> None:
        self.hub = hub

    async def stop(self) -> None:
        pass

    async def send(self, message: OutboundMessage) -> Delivery:
        raise PermanentFailure(CANNOT_SEND)

    async def process(self, payload: dict, raw: bytes | None) -> None:
        raise PermanentFailure("the web form channel spools nothing")

    def routes(self) -> list:
        slug = "/forms/{slug:[a-z0-9][a-z0-9-]*}"
        return [
            *(web.get(f"{ASSETS_PATH}/{name}", _asset(name, content_type)) for name, content_type in ASSETS.items()),
            web.get(slug, self.show_form),
            web.post(slug, self.submit),
            web.get(slug + "/embed", self.show_form),
            web.post(slug + "/embed", self.submit),
            web.get(slug + "/embed.js", self.embed_script),
        ]

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        # The security middleware adds X-Frame-Options: DENY to every response that has none; the
        # embeddable page is the one meant to be framed (its CSP frame-ancestors says where).
        if response.get(_EMBEDDABLE):
            response.headers.popall("X-Frame-Options", None)

    def _link(self) -> HubLink:
        if self.hub is None:
            raise TemporaryFailure("the web form channel is not started")
        return self.hub

    # --- pages ---------------------------------------------------------------------------------

    def _form_of(self, request: web.Request) -> Form | None:
        return self.forms.get(request.match_info["slug"])

    def _form_page(self, request: web.Request, form: Form, token: str, status: int = 200, **kwargs) -> web.Response:
        html = render_form(
            form,
            token=token,
            upload_types=list(self.limits.upload_types),
            max_upload_bytes=self.limits.max_upload_bytes,
            embed=_is_embed(request),
            **kwargs,
        )
        # private, no-cache and not no-store: the back button shows the page from history with the
        # same token, so sending it again is recognised as the same submission.
        return _page(request, html, status, cache="private, no-cache" if status == 200 else "no-store")

    async def show_form(self, request: web.Request) -> web.Response:
        form = self._form_of(request)
        if form is None:
            return _not_found(request)
        i18n.set_current(page_language(form, request))
        issued = form_token.issue(self.secret, form.slug)
        return self._form_page(request, form, issued.value)

    async def embed_script(self, request: web.Request) -> web.Response:
        form = self._form_of(request)
        if form is None:
            return web.Response(status=404, text="no such form", content_type="text/plain")
        script = render_embed_script(form, self.public_url)
        return web.Response(
            text=script,
            content_type="text/javascript",
            charset="utf-8",
            headers={"Cache-Control": "public, max-age=300"},
        )

    # --- the submission ------------------------------------------------------------------------

    async def submit(self, request: web.Request) -> web.Response:
        form = self._form_of(request)
        if form is None:
            return _not_found(request)
        hub, limits = self._link(), self.limits
        i18n.set_current(page_language(form, request))
        embed = _is_embed(request)
        back = form_path(form, embed=embed)

        wait = hub.rate_limit(request, "webform", limits.submissions_per_minute)
        if wait:
            seconds = max(1, int(wait + 0.999))
            log.info("web form %s: rate limit for %s", form.slug, hub.client_key(request))
            html = render_notice(
                _("Too many messages"),
                _("You have sent several messages in a short time. Please wait %(seconds)s seconds, then go back and send "
                  "your message again.") % {"seconds": seconds},
                _("If you use the browser's back button, what you typed is usually still there."),
                back=back, embed=embed,
            )
            return _page(request, html, 429, headers={"Retry-After": str(seconds)})

        try:
            posted = await read_submission(request, form, limits)
        except BodyTooLarge:
            html = render_notice(
                _("Your message is too large"),
                _("The files you attached are too large to send. Please go back and attach smaller files."),
                back=back, embed=embed,
            )
            return _page(request, html, 413)
        except UnreadableBody as exc:
            log.info("web form %s: unreadable body: %s", form.slug, exc)
            html = render_notice(
                _("Your message could not be read"),
                _("Please send it with the form on this page."),
                back=back, embed=embed,
            )
            return _page(request, html, 400)

        try:
            token = form_token.verify(self.secret, form.slug, posted.values.get(TOKEN_FIELD))
        except form_token.TokenInvalid as exc:
            log.info("web form %s: refused a submission without a valid token (%s)", form.slug, exc)
            html = render_notice(
                _("This form could not be sent"),
                _("Your message was not sent because the form's security token is missing or invalid. "
                  "This happens when a form is sent from another website or the page was altered."),
                _("Please open the form again, fill it in and send it."),
                back=back, back_text=_("Open the form again"), embed=embed,
            )
            return _page(request, html, 403)

        if posted.values.get(HONEYPOT_FIELD, "").strip():
            # A person never sees this field; whatever filled it is a bot. It is told all went well,
            # so it learns nothing, and nothing is stored.
            log.info("web form %s: honeypot filled, submission dropped", form.slug)
            return _page(request, render_confirmation(form, reference=None, embed=embed))

        upload_limits = UploadLimits(max_bytes=limits.max_upload_bytes, types=tuple(limits.upload_types))
        outcome = validate(form, posted.values, posted.files, upload_limits)
        resend_file = bool(posted.files) and any(u.data or u.too_large for u in posted.files.values())
        page_token, notice = token.value, None
        if token.expired():
            page_token = form_token.issue(self.secret, form.slug).value
            notice = _("This page was open for a long time, so it had to be renewed. Please check your message and send it again.")
        elif token.age() < limits.min_fill_seconds:
            notice = _("That was quicker than a person usually fills in this form. Please check your message and press Send again.")
        if notice is not None or not outcome.ok:
            return self._form_page(
                request, form, page_token, 422,
                values=outcome.typed, errors=outcome.errors, notice=notice, resend_file=resend_file,
            )

        message = to_message(form, outcome, token.submission_id)
        try:
            result = await hub.ingest(message)
        except RejectedInput as exc:
            log.info("web form %s: ingest refused the submission: %s", form.slug, exc.message)
            return self._form_page(
                request, form, page_token, 422,
                values=outcome.typed, errors={}, notice=_("Your message could not be accepted: %(reason)s") % {"reason": exc.message},
                resend_file=resend_file,
            )
        email = None
        if outcome.contact_kind == "email":
            email = await hub.send(
                confirmation(result.conversation_id, outcome.contact, token.submission_id, language=i18n.current()),
                metadata=dict(METADATA)
            )
        html = render_confirmation(
            form,
            reference=result.conversation_id,
            email=email,
            phone=outcome.contact if outcome.contact_kind == "phone" else None,
            rows=summary(form, outcome),
            embed=embed,
        )
        return _page(request, html)


def from_settings(settings) -> WebFormChannel:
    """Always on: a hub without forms answers 404 at their addresses. A broken form definition stops
    the start, with its reason."""
    return WebFormChannel(
        forms=forms_from_config(settings.forms),
        secret_path=settings.data_dir / "secret.key",
        public_url=settings.public_url,
        limits=FormLimits(
            max_request_bytes=settings.max_request_bytes,
            max_upload_bytes=settings.form_max_upload_bytes,
            upload_types=tuple(settings.form_upload_types),
            min_fill_seconds=settings.form_min_fill_seconds,
            submissions_per_minute=settings.form_rate_per_minute,
        ),
    )


def _asset(name: str, content_type: str):
    body = (STATIC / name).read_bytes()

    async def serve(request: web.Request) -> web.Response:
        return web.Response(
            body=body, content_type=content_type, charset="utf-8", headers={"Cache-Control": "public, max-age=3600"}
        )

    return serve


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


def page_language(form: Form, request: web.Request) -> str:
    """The language of a form's pages: the form's own when it is written in one the hub has
    besides English (its labels are in it), else the visitor's browser's (Accept-Language)."""
    configured = i18n.normalise(form.lang)
    if configured and configured != i18n.DEFAULT:
        return configured
    return i18n.negotiate(request.headers.get("Accept-Language"))


def _not_found(request: web.Request) -> web.Response:
    i18n.set_current(i18n.negotiate(request.headers.get("Accept-Language")))
    html = render_notice(
        _("Form not found"),
        _("There is no form at this address. Please check the link you followed."),
        embed=_is_embed(request),
    )
    return _page(request, html, 404)
