"""The pages a visitor sees, rendered with Jinja2 with autoescaping on for every template: all
that a visitor typed is echoed as text, never as markup."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from channels.webform.form import HONEYPOT_FIELD, TOKEN_FIELD, Form
from channels.webform.uploads import describe_types, human_size, normalise_declared
from channels.webform.validation import MAX_LENGTH
from hub.contract import i18n
from hub.contract.i18n import gettext as _

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
ASSETS_PATH = "/forms/_assets"

_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg,.jpeg",
    "image/gif": ".gif",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
}

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,  # every template, .js included: values reach scripts only through |tojson
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
i18n.install(_env)  # the visitor's language (set per request by the channel: channel.page_language)


def _html_lang(form: Form) -> str:
    """<html lang>: the form's own language when the page is in it, else the page's."""
    current = i18n.current()
    return form.lang if i18n.normalise(form.lang) == current else i18n.HTML_LANG[current]


def form_path(form: Form, *, embed: bool = False) -> str:
    return f"/forms/{form.slug}/embed" if embed else f"/forms/{form.slug}"


def _hints(form: Form, upload_types, max_upload_bytes: int, resend_file: bool) -> dict[str, str]:
    hints = {}
    for f in form.fields:
        if f.type == "phone":
            hints[f.name] = _("Include the country code, for example +44 20 7946 0958.")
        elif f.type == "order_number":
            hints[f.name] = _("As shown on your order confirmation, for example A1001.")
        elif f.type == "file":
            hint = _("%(types)s; up to %(size)s.") % {"types": describe_types(upload_types), "size": human_size(max_upload_bytes)}
            if resend_file:
                # Browsers never refill a file input: say so rather than let the file be lost.
                hint += " " + _("If you had chosen a file, please choose it again.")
            hints[f.name] = hint
    return hints


def _accept(upload_types) -> str:
    parts = []
    for t in upload_types:
        t = normalise_declared(t)
        parts.append(t)
        if t in _EXTENSIONS:
            parts.append(_EXTENSIONS[t])
    return ",".join(parts)


def render_form(
    form: Form,
    *,
    token: str,
    upload_types,
    max_upload_bytes: int,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    notice: str | None = None,
    embed: bool = False,
    resend_file: bool = False,
) -> str:
    return _env.get_template("form.html").render(
        form=form,
        lang=_html_lang(form),
        embed=embed,
        assets=ASSETS_PATH,
        action=form_path(form, embed=embed),
        token=token,
        token_field=TOKEN_FIELD,
        honeypot=HONEYPOT_FIELD,
        values=dict(values or {}),
        errors=dict(errors or {}),
        ids={f.name: f.html_id for f in form.fields},
        hints=_hints(form, upload_types, max_upload_bytes, resend_file),
        accept=_accept(upload_types),
        max_length=MAX_LENGTH,
        notice=notice,
    )


def render_confirmation(
    form: Form,
    *,
    reference: int | None,
    email: str | None = None,
    phone: str | None = None,
    rows: list[tuple[str, str]] | None = None,
    embed: bool = False,
) -> str:
    return _env.get_template("confirmation.html").render(
        form=form,
        lang=_html_lang(form),
        embed=embed,
        assets=ASSETS_PATH,
        action=form_path(form, embed=embed),
        reference=reference,
        email=email,
        phone=phone,
        rows=rows or [],
    )


def render_notice(
    heading: str,
    *paragraphs: str,
    back: str | None = None,
    back_text: str | None = None,
    embed: bool = False,
) -> str:
    return _env.get_template("notice.html").render(
        heading=heading,
        paragraphs=paragraphs,
        back=back,
        back_text=back_text or _("Back to the form"),
        lang=i18n.HTML_LANG[i18n.current()],
        embed=embed,
        assets=ASSETS_PATH,
    )


def render_embed_script(form: Form, public_url: str) -> str:
    """The script a company puts on its own site: it inserts an iframe of the embeddable form."""
    base = public_url.rstrip("/")
    scheme, sep, rest = base.partition("://")
    origin = f"{scheme}{sep}{rest.split('/', 1)[0]}"
    return _env.get_template("embed.js").render(
        slug=form.slug,
        title=form.title,
        origin=origin,
        script_url=f"{base}/forms/{form.slug}/embed.js",
        page_url=f"{base}{form_path(form)}",
        frame_url=f"{base}{form_path(form, embed=True)}",
    )
