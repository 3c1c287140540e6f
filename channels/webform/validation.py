"""A posted form -> the errors to show the visitor, or the InboundMessage to hand to the hub.

Pure functions over plain values: the web layer reads the request, this module decides. What a
visitor typed is kept as text (never HTML): the inbox shows it exactly as typed, inert.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import idna
import phonenumbers

from channels.webform.form import NAME_FIELD, SUBJECT_FIELD, Field, Form
from channels.webform.uploads import check as check_upload
from channels.webform.uploads import human_size, safe_filename
from hub.contract import i18n
from hub.contract.i18n import gettext as _
from hub.contract.messages import Attachment, InboundMessage, Sender

CHANNEL = "webform"
MAX_LINE = 200  # one-line fields
MAX_EMAIL = 254
MAX_PHONE = 40
MAX_ORDER = 40
MAX_TEXTAREA = 20_000

MAX_LENGTH = {"email": MAX_EMAIL, "phone": MAX_PHONE, "order_number": MAX_ORDER, "text": MAX_LINE, "textarea": MAX_TEXTAREA}
# A raw value this many times its limit is refused without cleaning it first (cleaning removes
# control characters and, on one-line fields, runs of spaces, so a value may shrink, but not so much).
_RAW_FACTOR = 8


@dataclass(frozen=True)
class UploadedFile:
    """A file part as read from the request. too_large: the reader stopped keeping bytes at the
    limit (data is then empty or partial and must not be stored)."""

    filename: str | None
    content_type: str | None
    data: bytes
    too_large: bool = False


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    types: tuple[str, ...]


@dataclass
class Outcome:
    """typed: the values as the visitor typed them (for a re-render); clean: normalised values;
    errors: field name -> a message for the visitor, in the form's order."""

    typed: dict[str, str] = field(default_factory=dict)
    clean: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    attachments: dict[str, Attachment] = field(default_factory=dict)
    contact_kind: str | None = None  # "email" | "phone"
    contact: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


# Control and invisible formatting characters have no business in a form; line breaks and tabs
# stay in a textarea.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def clean_text(value: str, *, multiline: bool) -> str:
    value = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))
    value = _CONTROL.sub("", value)
    if not multiline:
        value = " ".join(value.split())
    return value.strip()


_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def valid_email(value: str) -> bool:
    """A deliverable-looking address: dot-atom local part, a domain with a dot (IDN allowed)."""
    if len(value) > MAX_EMAIL or value.count("@") != 1:
        return False
    local, domain = value.split("@")
    if not local or len(local) > 64 or not _LOCAL.match(local):
        return False
    try:
        ascii_domain = idna.encode(domain.rstrip("."), uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError):
        return False
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return False
    tld = labels[-1]
    return tld.isalpha() or tld.startswith("xn--")


def normalise_phone(value: str) -> str | None:
    """E.164 for a possible international number, else None. Without a country code the number
    is ambiguous (the hub serves customers in many countries), so it is asked for."""
    digits = value.strip()
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if not digits.startswith("+"):
        return None
    try:
        number = phonenumbers.parse(digits, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_ORDER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9 ._/-]*[A-Za-z0-9])?$")


def normalise_order_number(value: str) -> str | None:
    """'#A-1001' -> 'A-1001'; None for something that cannot be an order number (letters,
    digits and . _ / - and spaces inside, at least one digit, 2 to 40 characters)."""
    value = value.strip().lstrip("#").strip()
    if not (2 <= len(value) <= MAX_ORDER) or not _ORDER.match(value) or not any(c.isdigit() for c in value):
        return None
    return value


def _required_message(f: Field) -> str:
    if f.type == "file":
        return _("Choose a file for “%(label)s”.") % {"label": f.plain_label}
    return _("Fill in “%(label)s”.") % {"label": f.plain_label}


def _too_long(f: Field, limit: int, length: int) -> str:
    return _("“%(label)s” must be at most %(limit)s characters (it has %(length)s).") % {
        "label": f.plain_label, "limit": limit, "length": length}


def validate(form: Form, values: Mapping[str, str], files: Mapping[str, UploadedFile], limits: UploadLimits) -> Outcome:
    """Check a submission against its form. Fields the form does not define are ignored."""
    out = Outcome()
    for f in form.fields:
        if f.type == "file":
            _validate_file(f, files.get(f.name), limits, out)
            continue
        raw = values.get(f.name, "") or ""
        limit = MAX_LENGTH[f.type]
        if len(raw) > _RAW_FACTOR * limit:
            # Far over the limit, whatever cleaning would remove: refused before the whole value is
            # cleaned, and only its start is shown again.
            out.typed[f.name] = clean_text(raw[:limit], multiline=f.type == "textarea")
            out.errors[f.name] = _too_long(f, limit, len(raw))
            continue
        typed = clean_text(raw, multiline=f.type == "textarea")
        out.typed[f.name] = typed
        if not typed:
            if f.required:
                out.errors[f.name] = _required_message(f)
            continue
        if len(typed) > limit:
            out.errors[f.name] = _too_long(f, limit, len(typed))
            continue
        if f.type == "email":
            if not valid_email(typed):
                out.errors[f.name] = _("Enter an email address like name@example.com.")
                continue
            out.clean[f.name] = typed
        elif f.type == "phone":
            phone = normalise_phone(typed)
            if phone is None:
                out.errors[f.name] = _("Enter a phone number with its country code, like +44 20 7946 0958.")
                continue
            out.clean[f.name] = phone
        elif f.type == "order_number":
            order = normalise_order_number(typed)
            if order is None:
                out.errors[f.name] = _("Enter the order number as it appears on your order confirmation, like A1001.")
                continue
            out.clean[f.name] = order
        else:
            out.clean[f.name] = typed
    _choose_contact(form, out)
    return out


def _validate_file(f: Field, upload: UploadedFile | None, limits: UploadLimits, out: Outcome) -> None:
    if upload is None or (not upload.data and not upload.too_large and not upload.filename):
        if f.required:
            out.errors[f.name] = _required_message(f)
        return
    if upload.too_large:
        out.errors[f.name] = _("The file is larger than %(size)s. Choose a smaller file.") % {"size": human_size(limits.max_bytes)}
        return
    data = upload.data
    content_type, problem = check_upload(data, upload.content_type, limits.types, limits.max_bytes)
    if problem is not None:
        out.errors[f.name] = problem.message
        return
    out.attachments[f.name] = Attachment(
        filename=safe_filename(upload.filename, content_type), content_type=content_type, data=data, size=len(data)
    )


def _choose_contact(form: Form, out: Outcome) -> None:
    """The email is the customer's identity; a phone only when no email was given."""
    for kind in ("email", "phone"):
        for f in form.fields:
            if f.type == kind and f.name in out.clean:
                out.contact_kind, out.contact = kind, out.clean[f.name]
                return
    if any(f.name in out.errors for f in form.fields if f.type in ("email", "phone")):
        return  # the visitor already has a message about the address they typed
    first = form.first("email") or form.first("phone")
    if first is not None:
        out.errors[first.name] = _("Give an email address or a phone number, so that we can answer you.")
        # Keep the form's order: the summary lists problems as the fields come.
        out.errors = {f.name: out.errors[f.name] for f in form.fields if f.name in out.errors}


def subject_of(form: Form, out: Outcome) -> str:
    subject_field = form.field(SUBJECT_FIELD)
    if subject_field is not None and subject_field.type == "text" and out.clean.get(SUBJECT_FIELD):
        return out.clean[SUBJECT_FIELD]
    return f"Web form: {form.title}"


def summary(form: Form, out: Outcome) -> list[tuple[str, str]]:
    """(label, value) of what was sent, in the form's order, for the agent and the visitor."""
    rows = []
    for f in form.fields:
        if f.type == "file":
            att = out.attachments.get(f.name)
            if att is not None:
                rows.append((f.plain_label, att.filename))
        elif out.clean.get(f.name):
            rows.append((f.plain_label, out.clean[f.name]))
    return rows


def message_text(form: Form, out: Outcome) -> str:
    """'Name: Ana\\nOrder number: A1001\\n\\n<the message>': one-line fields first, then the
    long text, which is what the agent reads."""
    lines = [
        f"{f.plain_label}: {out.clean[f.name]}"
        for f in form.fields
        if f.type not in ("textarea", "file") and f.name != SUBJECT_FIELD and out.clean.get(f.name)
    ]
    long = [f for f in form.fields if f.type == "textarea" and out.clean.get(f.name)]
    blocks = ["\n".join(lines)] if lines else []
    for f in long:
        blocks.append(out.clean[f.name] if len(long) == 1 else f"{f.plain_label}:\n{out.clean[f.name]}")
    return "\n\n".join(blocks)


def to_message(form: Form, out: Outcome, submission_id: str, *, sent_at: datetime | None = None) -> InboundMessage:
    """The submission as the hub stores it: a new conversation of the customer whose email (or
    phone) was given, deduplicated on the submission id."""
    if not out.ok or out.contact is None or out.contact_kind is None:
        raise ValueError("only a valid submission becomes a message")
    name_field = form.field(NAME_FIELD)
    name = out.clean.get(NAME_FIELD) if name_field is not None and name_field.type == "text" else None
    fields = {f.name: out.clean[f.name] for f in form.fields if f.type not in ("textarea", "file") and f.name in out.clean}
    return InboundMessage(
        channel=CHANNEL,
        external_id=submission_id,
        sender=Sender(out.contact, name, out.contact_kind),
        text=message_text(form, out),
        subject=subject_of(form, out),
        html=None,  # never: the visitor's input is text
        sent_at=sent_at,
        attachments=tuple(out.attachments[f.name] for f in form.fields if f.name in out.attachments),
        # The language the visitor read the form in, when not the default: the hub answers them in it
        # (hub.csat.surveys.customer_language).
        metadata={"form": form.slug, "fields": fields,
                  **({"language": i18n.current()} if i18n.current() != i18n.DEFAULT else {})},
    )
