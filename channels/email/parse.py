"""Raw RFC 5322 bytes -> InboundMessage: headers decoded in any charset, the body chosen and
decoded (text/plain preferred, HTML converted), quoted history and signatures stripped,
attachments collected, thread hints and machine-mail flags set.

A pure function for the receiver and the IMAP poller. It never raises for any bytes except
RejectedInput, for input that is not an email at all.

Its time is linear in the size of the mail, however the mail is built: every step is capped before
it runs (the text at MAX_TEXT before quote stripping, header values before they are decoded, MIME
nesting and the number of parts before the stdlib's parser descends into them) and every pattern is
written not to backtrack. bench/hostile.py measures it against crafted worst cases.

The MIME tree is parsed by the stdlib with the compat32 policy, and header values are decoded
here (channels/email/headers.py): policy.default's structured headers were four times slower over
the fixture corpus (2.0 vs 0.5 ms a message to walk and decode), raise on some malformed
headers, and read unknown or mislabelled charsets as replacement characters.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import logging
import mimetypes
import re
from dataclasses import dataclass, field
from email.feedparser import BytesFeedParser
from email.message import Message
from email.policy import Compat32

from channels.email import headers as hdr
from channels.email.authentication import sender_verified
from channels.email.automated import header_summary, machine_flags
from channels.email.charsets import codec_for, decode
from channels.email.html_text import html_to_text
from channels.email.quotes import extract_reply
from hub.contract.errors import RejectedInput
from hub.contract.messages import Attachment, InboundMessage, Sender, ThreadHints

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
MAX_TEXT = 1_000_000  # the hub rejects longer texts
MAX_EXTERNAL_ID = 500
MAX_THREAD_IDS = 50
MAX_PARTS = 500
MAX_LISTED_ADDRESSES = 100
MAX_DEPTH = 30
# Parts the MIME parser builds at most (parts of enclosed messages included); later ones, and
# anything nested deeper than MAX_DEPTH, are kept as opaque bytes in their parent part.
MAX_PARSED_PARTS = 10 * MAX_PARTS
# What is looked at of a header value (a From or Subject of a megabyte is an attack, not a name).
MAX_HEADER_CHARS = 16_384
MAX_REFERENCES_CHARS = 65_536
MAX_HEADER_VALUES = 50
# Bytes of one text part that are decoded: MAX_TEXT characters in any charset (4 bytes at most each).
_MAX_TEXT_BYTES = 4 * MAX_TEXT

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_FORWARD_SUBJECT = re.compile(
    r"^\s*(?:\[[^\]]*\]\s*)?(?:fwd?|fw|wg|tr|rv|enc|i|vs|vb|vl|doorst|pd|fwd?\s*\[\d+\]|転送|转发|轉寄|转寄|пересл)\s*[:：]",
    re.I | re.U,
)
_PLUS_TOKEN = re.compile(r"^c(\d{1,12})$", re.I)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.()+-]+)""", re.I)
_MSGID_IN_TEXT = re.compile(r"^[ \t]*+Message-ID[ \t]*+:\s*+(<[^<>\s]++>)", re.I | re.M)
_RECIPIENT_HEADERS = ("to", "cc", "delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "x-forwarded-to")
_REPORT_PART_NAMES = {
    "message/delivery-status": "delivery-status.txt",
    "message/global-delivery-status": "delivery-status.txt",
    "text/rfc822-headers": "original-headers.txt",
    "message/rfc822-headers": "original-headers.txt",
    "message/global-headers": "original-headers.txt",
    "message/disposition-notification": "disposition-notification.txt",
    "message/feedback-report": "feedback-report.txt",
}


class _RawHeaders(Compat32):
    """compat32, but header values are handed out exactly as received (8-bit bytes as surrogate
    escapes) instead of as email.header.Header objects that turn 8-bit bytes into "?"; decoding
    them is headers.py's job."""

    def header_fetch_parse(self, name, value):
        return value


_POLICY = _RawHeaders()


class _Part(Message):
    """A part as the parser builds it. One beyond the depth or part limits reads as text/plain
    while it is parsed, so the parser keeps its body as opaque bytes instead of descending into it;
    afterwards it tells its real type again."""

    opaque = False

    def get_content_type(self):
        return "text/plain" if self.opaque else super().get_content_type()


class _MimeParser(BytesFeedParser):
    """The stdlib's parser with a limit on nesting and parts. FeedParser has no public hook for
    this: _new_message() is where it starts every part."""

    def __init__(self, max_depth: int, max_parts: int):
        super().__init__(_factory=_Part, policy=_POLICY)
        self._max_depth = max_depth
        self._max_parts = max_parts
        self._count = 0
        self._opaque: list[_Part] = []

    def _new_message(self):
        super()._new_message()
        self._count += 1
        if len(self._msgstack) > self._max_depth or self._count > self._max_parts:
            self._cur.opaque = True
            self._opaque.append(self._cur)

    def close(self) -> Message:
        root = super().close()
        for part in self._opaque:
            part.opaque = False
        return root


def _mime(raw: bytes, *, max_depth: int = MAX_DEPTH + 2, max_parts: int = MAX_PARSED_PARTS) -> Message:
    """The MIME tree of raw bytes. A mail that is not multipart (nor message/*) has one body the
    parser would only split into lines and join again: its headers are parsed and the body is
    attached as it is, which spares a Python call per line of it."""
    split = _header_end(raw)
    if split is not None and split < len(raw):
        head = _MimeParser(max_depth, max_parts)
        head.feed(raw[:split])
        root = head.close()
        if root.get_content_maintype() not in ("multipart", "message"):
            root.set_payload(root.get_payload() + raw[split:].decode("ascii", "surrogateescape"))
            return root
    parser = _MimeParser(max_depth, max_parts)
    parser.feed(raw)
    return parser.close()


def _header_end(raw: bytes) -> int | None:
    """Where the first blank line ends (the headers end there or before), or None."""
    ends = [i + len(sep) for sep in (b"\n\n", b"\n\r\n") if (i := raw.find(sep)) >= 0]
    return min(ends) if ends else None


@dataclass
class _Body:
    """What walking the MIME tree found."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    original_ids: list[str] = field(default_factory=list)  # Message-IDs of enclosed/bounced mail
    delivery_status: list[dict] = field(default_factory=list)
    report_types: list[str] = field(default_factory=list)
    fallback: bool = False
    hint: str | None = None  # the first declared body charset, for unencoded 8-bit names
    parts: int = 0
    has_delivery_status: bool = False
    text_chars: int = 0  # decoded text/plain so far: parts past MAX_TEXT are not decoded
    reparse_left: int = 0  # bytes that recovering broken multiparts may still parse again


def parse(
    raw: bytes,
    *,
    own_addresses: tuple[str, ...] = (),
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    trusted_authserv_id: str | None = None,
) -> InboundMessage:
    """Parse one raw email. Raises RejectedInput only when the bytes are not an email at all
    (empty, an Outlook .msg file, no header lines); any other oddity degrades, never raises.
    trusted_authserv_id: the receiving server whose Authentication-Results verify the sender's
    address (channels/email/authentication.py); None trusts none."""
    if isinstance(raw, (bytearray, memoryview)):
        raw = bytes(raw)
    if not isinstance(raw, bytes):
        raise RejectedInput("an email must be given as bytes")
    if not raw.strip():
        raise RejectedInput("empty input is not an email")
    if raw.startswith(_OLE_MAGIC):
        raise RejectedInput("this is an Outlook .msg file (OLE compound document), not an RFC 822 email: save it as .eml")
    try:
        return _parse(raw, own_addresses, max_attachment_bytes, trusted_authserv_id)
    except RejectedInput:
        raise
    except Exception as exc:  # noqa: BLE001 - a parser bug must not lose a customer's mail
        log.exception("email parse failed; storing a minimal message")
        try:
            return _parse_minimal(raw, own_addresses, exc)
        except RejectedInput:
            raise
        except Exception as exc2:  # noqa: BLE001
            raise RejectedInput(f"this email could not be read: {exc2}") from None


def _header_map(msg: Message) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        if not isinstance(value, str):
            value = str(value)
        out.setdefault(name.strip().lower(), []).append(value)
    return out


def _first(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def _looks_like_email(headers: dict[str, list[str]]) -> bool:
    if not headers:
        return False
    known = {"from", "to", "subject", "date", "message-id", "received", "return-path", "mime-version",
             "content-type", "sender", "reply-to", "delivered-to", "cc", "x-mailer", "in-reply-to", "references"}
    return bool(known.intersection(headers))


def _parse(raw: bytes, own_addresses: tuple[str, ...], max_attachment_bytes: int, trusted_authserv_id: str | None = None) -> InboundMessage:
    msg = _mime(raw)
    headers = _header_map(msg)
    if not _looks_like_email(headers):
        raise RejectedInput("no email headers found: this is not an email")
    own = _own_set(own_addresses)

    hint = _charset_hint(msg)
    body = _Body(hint=hint, reparse_left=2 * len(raw) + 65_536)
    _walk(msg, body, max_attachment_bytes, want_plain=True, want_html=True, depth=0)

    sender, fb_sender = _sender(msg, headers, hint)
    subject, fb_subject = hdr.header_text(_capped(_first(headers, "subject") or "") or None, hint)
    fallback = body.fallback or fb_sender or fb_subject

    full_text, html = _body_text(body)
    # Cap first: quote stripping and everything after it see at most MAX_TEXT characters.
    truncated = len(full_text) > MAX_TEXT
    full_text = full_text[:MAX_TEXT]
    forwarded = bool(subject and _FORWARD_SUBJECT.match(subject))
    text = extract_reply(full_text, forwarded=forwarded) if full_text else ""

    metadata: dict = {}
    recipients: dict[str, list[tuple[str, str]]] = {}
    for name in ("to", "cc", "reply-to", *_RECIPIENT_HEADERS[2:]):
        pairs, fb = hdr.addresses([_capped(v) for v in headers.get(name, [])[:MAX_HEADER_VALUES]], hint)
        fallback = fallback or fb
        recipients[name] = pairs
    metadata["to"] = [addr for _, addr in recipients["to"]][:MAX_LISTED_ADDRESSES]
    metadata["cc"] = [addr for _, addr in recipients["cc"]][:MAX_LISTED_ADDRESSES]
    metadata["reply_to"] = [addr for _, addr in recipients["reply-to"]][:MAX_LISTED_ADDRESSES]

    flags = machine_flags(
        headers,
        sender=sender.address,
        subject=subject,
        report_types=body.report_types,
        has_delivery_status=body.has_delivery_status,
        own=own,
    )
    external_id = _external_id(headers, raw)
    thread = _thread(headers, body, flags, full_text, recipients, own, external_id)

    if not text and not html and not body.attachments:
        # A subject-only email ("Cancel order 1234") still says something; the hub needs text.
        text = subject or ""
        metadata["empty_body"] = True
    if full_text and full_text != text:
        metadata["full_text"] = full_text
    if truncated or len(text) > MAX_TEXT:
        text = text[:MAX_TEXT]
        metadata["truncated"] = True
    if body.skipped:
        metadata["skipped_attachments"] = body.skipped
    summary = {key: hdr.header_text(value)[0][:500] for key, value in header_summary(headers).items()}
    if summary:
        metadata["headers"] = summary
    if body.report_types:
        metadata["report_type"] = body.report_types[0]
    if body.delivery_status:
        metadata["delivery_status"] = body.delivery_status[:20]
    if fallback:
        metadata["charset_fallback"] = True

    # The receiving server vouched for the From address: the hub may treat it as the sender's own.
    verified = ()
    if sender.address and not flags and sender_verified(headers.get("authentication-results", []), sender.address, trusted_authserv_id):
        verified = (Sender(sender.address, kind="email"),)
        metadata["sender_verified_by"] = trusted_authserv_id
    return InboundMessage(
        channel="email",
        external_id=external_id,
        sender=sender,
        verified_identities=verified,
        subject=_safe(subject) or None,
        text=_safe(text),
        html=_safe(html) if html else None,
        sent_at=hdr.date(_capped(_first(headers, "date") or "", 1000) or None),
        thread=thread,
        attachments=tuple(body.attachments),
        metadata=_safe_json(metadata),
        flags=tuple(flags),
        raw=raw,
    )


def _parse_minimal(raw: bytes, own_addresses: tuple[str, ...], error: Exception) -> InboundMessage:
    """Headers and the raw body as text: what is left when the MIME structure defeats the parser."""
    head, _, rest = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    msg = _mime(head + b"\n\n")
    headers = _header_map(msg)
    if not _looks_like_email(headers):
        raise RejectedInput("no email headers found: this is not an email")
    sender, _ = _sender(msg, headers, None)
    subject, _ = hdr.header_text(_capped(_first(headers, "subject") or ""))
    text, _ = decode(rest[:MAX_TEXT], None)
    own = _own_set(own_addresses)
    flags = machine_flags(headers, sender=sender.address, subject=subject, report_types=[], has_delivery_status=False, own=own)
    external_id = _external_id(headers, raw)
    return InboundMessage(
        channel="email",
        external_id=external_id,
        sender=sender,
        subject=_safe(subject) or None,
        text=_safe(text.strip()) or _safe(subject or ""),
        sent_at=hdr.date(_capped(_first(headers, "date") or "", 1000) or None),
        thread=ThreadHints(in_reply_to=tuple(_reply_ids(headers, external_id))),
        metadata={"parse_error": f"{type(error).__name__}: {error}"[:500], "charset_fallback": True},
        flags=tuple(flags),
        raw=raw,
    )


# --- addresses ---------------------------------------------------------------------------------


def _own_set(own_addresses: tuple[str, ...]) -> set[tuple[str, str]]:
    own = set()
    for address in own_addresses:
        local, _, domain = address.strip().strip("<>").lower().rpartition("@")
        if local and domain:
            own.add((local.split("+", 1)[0], domain))
    return own


def _sender(msg: Message, headers: dict[str, list[str]], hint: str | None) -> tuple[Sender, bool]:
    fallback = False
    for name in ("from", "sender"):
        pairs, fb = hdr.addresses([_capped(v) for v in headers.get(name, [])[:1]], hint)
        fallback = fallback or fb
        if pairs:
            display, address = pairs[0]
            return Sender(_safe(address.strip()), _safe(display) or None), fallback
    for value in headers.get("return-path", [])[:MAX_HEADER_VALUES]:
        ids = hdr.message_ids(_capped(value))
        if ids and "@" in ids[0]:
            return Sender(_safe(ids[0][1:-1])), fallback
    unixfrom = msg.get_unixfrom() or ""
    parts = unixfrom.split()
    if len(parts) >= 2 and "@" in parts[1]:
        return Sender(_safe(parts[1].strip("<>"))), fallback
    # No sender anywhere: the hub will refuse it with a clear message; the parse itself succeeds.
    return Sender(""), fallback


def _capped(value: str, limit: int = MAX_HEADER_CHARS) -> str:
    """A header value cut to what is looked at; a list of addresses or ids is cut after an item."""
    if len(value) <= limit:
        return value
    value = value[:limit]
    cut = max(value.rfind(","), value.rfind(">"))
    return value[: cut + 1] if cut > 0 else value


def _external_id(headers: dict[str, list[str]], raw: bytes) -> str:
    ids = hdr.message_ids(_capped(_first(headers, "message-id") or ""))
    if ids and len(ids[0]) <= MAX_EXTERNAL_ID:
        return ids[0]
    seed = ids[0].encode("utf-8", "replace") if ids else raw
    return "<sha256-" + hashlib.sha256(seed).hexdigest() + "@servicehub.invalid>"


def _reply_ids(headers: dict[str, list[str]], external_id: str) -> list[str]:
    ids: list[str] = []
    for value in headers.get("in-reply-to", [])[:MAX_HEADER_VALUES]:
        ids.extend(hdr.message_ids(_capped(value)))
    references: list[str] = []
    for value in headers.get("references", [])[-MAX_HEADER_VALUES:]:
        # The newest ids are last: a References too long to read keeps its end.
        if len(value) > MAX_REFERENCES_CHARS:
            value = value[-MAX_REFERENCES_CHARS:]
            value = value[value.find("<") :] if "<" in value else value
        references.extend(hdr.message_ids(value))
    ids.extend(reversed(references))  # newest first
    out = [i for i in dict.fromkeys(ids) if i != external_id and len(i) <= MAX_EXTERNAL_ID]
    return out[:MAX_THREAD_IDS]


def _thread(
    headers: dict[str, list[str]],
    body: _Body,
    flags: list[str],
    full_text: str,
    recipients: dict[str, list[tuple[str, str]]],
    own: set[tuple[str, str]],
    external_id: str,
) -> ThreadHints:
    ids = _reply_ids(headers, external_id)
    if "bounce" in flags:
        # The bounced message's own id threads the bounce onto the conversation it came from.
        originals = list(body.original_ids)
        if not originals and full_text:
            originals = _MSGID_IN_TEXT.findall(full_text)
        originals = [i for i in originals if i != external_id]
        ids = list(dict.fromkeys(originals + ids))[:MAX_THREAD_IDS]
    return ThreadHints(in_reply_to=tuple(ids), conversation_id=_plus_token(recipients, own))


def _plus_token(recipients: dict[str, list[tuple[str, str]]], own: set[tuple[str, str]]) -> int | None:
    """support+c123@shop.example (our Reply-To for conversation 123) -> 123."""
    if not own:
        return None
    for name in _RECIPIENT_HEADERS:
        for _, address in recipients.get(name, []):
            local, _, domain = address.lower().rpartition("@")
            base, plus, tag = local.partition("+")
            if plus and (base, domain) in own:
                match = _PLUS_TOKEN.match(tag)
                if match:
                    return int(match.group(1))
    return None


# --- the MIME tree -------------------------------------------------------------------------------


def _walk(part: Message, body: _Body, limit: int, *, want_plain: bool, want_html: bool, depth: int) -> None:
    body.parts += 1
    if body.parts > MAX_PARTS or depth > MAX_DEPTH:
        return
    ctype = _content_type(part)
    if ctype in _REPORT_PART_NAMES:
        _report_part(part, ctype, body, limit)
        return
    if ctype.startswith("message/") and isinstance(part.get_payload(), list):
        _enclosed_message(part, body, limit)
        return
    if ctype.startswith("multipart/") and not part.is_multipart():
        # A multipart whose boundary matches nothing (mislabelled, or cut): find the boundary the
        # parts really use and parse again; an empty one is dropped.
        recovered = _recover_multipart(part, body)
        if recovered is None:
            return
        part, ctype = recovered, _content_type(recovered)
    if part.is_multipart():
        subparts = [p for p in (part.get_payload() or []) if isinstance(p, Message)]
        if ctype == "multipart/alternative":
            _alternative(subparts, body, limit, want_plain, want_html, depth)
            return
        if ctype == "multipart/report":
            report_type = (_param(part, "report-type") or "").lower()
            if report_type:
                body.report_types.append(report_type)
        for sub in subparts:
            _walk(sub, body, limit, want_plain=want_plain, want_html=want_html, depth=depth + 1)
        return
    _leaf(part, ctype, body, limit, want_plain, want_html)


def _alternative(subparts: list[Message], body: _Body, limit: int, want_plain: bool, want_html: bool, depth: int) -> None:
    """Alternatives of one content: the text/plain one feeds the text, the richest HTML one (a
    text/html part or a multipart/related around it) the html; the others only their files."""
    plain = html = None
    for sub in subparts:
        ctype = _content_type(sub)
        if _is_attachment(sub):
            continue
        if ctype == "text/plain" and plain is None:
            plain = sub
        elif ctype == "text/html" or ctype.startswith("multipart/"):
            html = sub
    for sub in subparts:
        if sub is plain:
            _walk(sub, body, limit, want_plain=want_plain, want_html=False, depth=depth + 1)
        elif sub is html:
            _walk(sub, body, limit, want_plain=want_plain and plain is None, want_html=want_html, depth=depth + 1)
        else:
            ctype = _content_type(sub)
            # Other renderings of the same content (text/enriched, AMP, Apple Watch HTML) are not
            # files; a calendar invitation or a nested multipart may carry real ones.
            if not ctype.startswith("text/") or ctype == "text/calendar" or _is_attachment(sub):
                _walk(sub, body, limit, want_plain=False, want_html=False, depth=depth + 1)


def _leaf(part: Message, ctype: str, body: _Body, limit: int, want_plain: bool, want_html: bool) -> None:
    if ctype in ("text/plain", "text/html") and not _is_attachment(part):
        if (ctype == "text/plain" and not want_plain) or (ctype == "text/html" and not want_html):
            return
        if ctype == "text/plain" and body.text_chars > MAX_TEXT:
            return  # the text is cut at MAX_TEXT anyway: a part beyond it is not decoded
        data = _payload(part)
        declared = _charset(part)
        if ctype == "text/plain" and len(data) > _MAX_TEXT_BYTES:
            data = _cut_text(data, declared)
        if ctype == "text/html" and declared is None:
            match = _META_CHARSET.search(data[:4096])
            declared = match.group(1).decode("ascii", "replace") if match else None
        text, fb = decode(data, declared)
        body.fallback = body.fallback or fb
        text = _newlines(text)
        if ctype == "text/plain":
            if (_param(part, "format") or "").lower() == "flowed":
                text = _unflow(text, (_param(part, "delsp") or "").lower() == "yes")
            body.plain.append(text)
            body.text_chars += len(text)
        else:
            body.html.append(text)
        return
    _attach(part, ctype, None, body, limit)


def _cut_text(data: bytes, declared: str | None) -> bytes:
    """The start of a text part too long to be read whole: cut at a line end (no ASCII-compatible
    charset has a character spanning one), or at a whole number of UTF-16/32 units."""
    codec = (codec_for(declared) or "").replace("_", "-")
    if codec.startswith(("utf-16", "utf-32")):
        return data[: _MAX_TEXT_BYTES - _MAX_TEXT_BYTES % 4]
    return data[: data.rfind(b"\n", 0, _MAX_TEXT_BYTES) + 1 or _MAX_TEXT_BYTES]


def _report_part(part: Message, ctype: str, body: _Body, limit: int) -> None:
    """The machine-readable parts of a multipart/report (DSN fields, the bounced message's
    headers, a read receipt, an abuse report). The parser reads some of them as lists of header
    blocks; they are kept as text files either way."""
    payload = part.get_payload()
    if isinstance(payload, list):
        chunks = []
        for block in payload:
            if isinstance(block, Message):
                chunks.append("\n".join(f"{k}: {v}" for k, v in block.raw_items()))
        data = "\n\n".join(chunks).encode("utf-8", "surrogateescape")
    else:
        data = _payload(part)
    if ctype.endswith("delivery-status"):
        body.has_delivery_status = True
        body.delivery_status.extend(_delivery_status(data))
    elif ctype.endswith("headers"):
        try:
            enclosed = _mime(data, max_depth=1, max_parts=1)
            body.original_ids.extend(hdr.message_ids(_capped(enclosed.get("Message-ID") or "")))
        except Exception:  # noqa: BLE001 - a broken report part must not lose the bounce
            pass
    _attach(part, ctype, data, body, limit, default_name=_REPORT_PART_NAMES[ctype])


_BOUNDARY_LINE = re.compile(r"^--([^\s]{1,200})[ \t]*$", re.M)


def _recover_multipart(part: Message, body: _Body) -> Message | None:
    payload = part.get_payload()
    if not isinstance(payload, str) or not payload.strip():
        return None
    # Each recovery parses its part again; recoveries nested in recovered parts would parse the same
    # bytes again and again, so together they may parse about twice the mail, no more.
    body.reparse_left -= len(payload)
    if body.reparse_left < 0:
        return None
    match = _BOUNDARY_LINE.search(payload)
    if match is None:
        fake = Message(policy=_POLICY)
        fake.set_payload(payload)
        fake["Content-Type"] = "text/plain"
        return fake
    boundary = match.group(1)
    head = f'Content-Type: multipart/mixed; boundary="{boundary}"\n\n'
    data = (head + payload).encode("ascii", "surrogateescape")
    try:
        recovered = _mime(data)
    except Exception:  # noqa: BLE001
        return None
    return recovered if recovered.is_multipart() else None


def _enclosed_message(part: Message, body: _Body, limit: int) -> None:
    """A message/rfc822 part (a forwarded mail, a bounced original): kept whole as forwarded.eml."""
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload and isinstance(payload[0], Message) else None
    data = b""
    if inner is not None:
        inner_id = inner.get("Message-ID")
        if inner_id is not None:
            body.original_ids.extend(hdr.message_ids(str(inner_id)))
        try:
            data = inner.as_bytes(policy=email.policy.compat32)
        except Exception:  # noqa: BLE001 - the generator chokes on some broken mail
            try:
                data = inner.as_string().encode("utf-8", "surrogateescape")
            except Exception:  # noqa: BLE001
                data = b""
    else:
        data = _payload(part)
    _attach(part, "message/rfc822", data, body, limit, forced_name="forwarded.eml")


def _attach(
    part: Message,
    ctype: str,
    data: bytes | None,
    body: _Body,
    limit: int,
    *,
    default_name: str | None = None,
    forced_name: str | None = None,
) -> None:
    name, fb = _filename(part, body.hint)
    body.fallback = body.fallback or fb
    if forced_name:
        name = forced_name
    content_id = _content_id(part)
    if not name:
        name = default_name or _default_name(ctype, len(body.attachments) + len(body.skipped) + 1)
    if data is None:
        estimate = _estimated_size(part)
        if estimate > limit * 1.4 + 1024:
            # Far over the limit: skip without decoding it.
            body.skipped.append({"filename": name, "content_type": ctype, "size": estimate})
            return
        data = _payload(part)
    if len(data) > limit:
        body.skipped.append({"filename": name, "content_type": ctype, "size": len(data)})
        return
    body.attachments.append(Attachment(filename=name, content_type=ctype, data=data, size=len(data), content_id=content_id))


def _body_text(body: _Body) -> tuple[str, str | None]:
    html = "\n".join(h for h in body.html if h.strip()) or None
    plain = "\n\n".join(p.strip("\n") for p in body.plain if p.strip())
    if plain.strip():
        text = plain
    elif html:
        text = html_to_text(html)
    else:
        text = ""
    return _trim(text), html


# --- part helpers --------------------------------------------------------------------------------


def _content_type(part: Message) -> str:
    try:
        ctype = part.get_content_type()
    except Exception:  # noqa: BLE001
        return "application/octet-stream"
    return ctype if "/" in ctype and len(ctype) < 128 else "application/octet-stream"


def _param(part: Message, name: str, header: str = "content-type") -> str | None:
    try:
        value = part.get_param(name, header=header)
    except Exception:  # noqa: BLE001
        return None
    if isinstance(value, tuple):
        value = value[2]
    return value if isinstance(value, str) else None


def _charset(part: Message) -> str | None:
    try:
        value = part.get_param("charset")
    except Exception:  # noqa: BLE001
        return None
    if isinstance(value, tuple):
        value = value[2]
    if not isinstance(value, str):
        return None
    value = value.strip().strip("\"'")
    return value or None


def _charset_hint(msg: Message) -> str | None:
    """The first declared body charset: how unencoded 8-bit headers are most likely written."""
    for i, part in enumerate(msg.walk()):
        if i > 20:
            break
        if not part.is_multipart():
            charset = _charset(part)
            if charset and charset.lower() not in ("us-ascii", "ascii", "utf-8", "utf8"):
                return charset
    return None


def _is_attachment(part: Message) -> bool:
    try:
        disposition = part.get_content_disposition()
    except Exception:  # noqa: BLE001
        disposition = None
    if disposition == "attachment":
        return True
    return _raw_filename(part) is not None


def _raw_filename(part: Message):
    try:
        value = part.get_param("filename", None, "content-disposition")
        if value is None:
            value = part.get_param("name", None, "content-type")
    except Exception:  # noqa: BLE001
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _filename(part: Message, hint: str | None = None) -> tuple[str | None, bool]:
    """The attachment's file name: RFC 2231 (charset and continuations), RFC 2047 encoded words
    (not allowed there, sent by everyone), raw 8-bit bytes; path parts and control characters
    removed."""
    value = _raw_filename(part)
    if value is None:
        return None, False
    fallback = False
    if isinstance(value, tuple):
        charset, _lang, text = value
        data = text.encode("raw-unicode-escape", "replace") if isinstance(text, str) else b""
        name, fallback = decode(data, charset or "utf-8")
    else:
        name, fallback = hdr.header_text(email.utils.unquote(value), hint)
    name, fb = hdr.decode_words(name)
    name = hdr.clean_line(name).replace("\\", "/").rsplit("/", 1)[-1].strip().strip(".") if name else ""
    name = name.replace("\x00", "")[:255]
    return (name or None), (fallback or fb)


def _content_id(part: Message) -> str | None:
    value = part.get("Content-ID")
    if value is None:
        return None
    text = hdr.clean_line(hdr.raw_to_text(str(value))[0]).strip().strip("<>").strip()
    return text[:500] or None


def _default_name(ctype: str, n: int) -> str:
    ext = mimetypes.guess_extension(ctype, strict=False) or ".bin"
    stem = "image" if ctype.startswith("image/") else "attachment"
    return f"{stem}-{n}{ext}"


def _estimated_size(part: Message) -> int:
    payload = part.get_payload()
    if not isinstance(payload, str):
        return 0
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if cte == "base64":
        chars = len(payload) - sum(payload.count(c) for c in "\r\n \t=")
        return chars * 3 // 4
    return len(payload)


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - broken transfer encodings
        payload = part.get_payload()
        data = payload.encode("ascii", "surrogateescape") if isinstance(payload, str) else b""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8", "surrogateescape")
    return b""


def _delivery_status(data: bytes) -> list[dict]:
    """Per-recipient fields of a DSN (RFC 3464): who, what happened, why."""
    text, _ = decode(data, "utf-8")
    out: list[dict] = []
    for block in re.split(r"\n\s*\n", _newlines(text)):
        fields: dict[str, str] = {}
        for line in re.sub(r"\n[ \t]+", " ", block).split("\n"):
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip().lower()] = value.strip()
        recipient = fields.get("final-recipient") or fields.get("original-recipient")
        if recipient:
            entry = {"recipient": recipient.split(";", 1)[-1].strip()[:320]}
            for key in ("action", "status", "diagnostic-code"):
                if key in fields:
                    entry[key.replace("-", "_")] = fields[key][:1000]
            out.append(entry)
    return out


# --- text helpers --------------------------------------------------------------------------------


def _newlines(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


# Trailing whitespace of a line; a match starts only where a run of whitespace starts (linear).
_TRAILING_SPACE = re.compile(r"(?<![^\S\n])[^\S\n]++(?=\n|\Z)")
_QUOTED_LINE = re.compile(r"^>", re.M)
_STUFFED = re.compile(r"^ ", re.M)
# A line ending in a space flows into the next, unless either line is the "-- " signature separator.
_FLOWED_END = re.compile(r"(?<!^--) \n(?!-- (?:\n|\Z))", re.M)
# With DelSp=yes the space of every flowed line goes, also of one that flows into nothing (the
# separator, the end of the text): group 1 keeps the line break before a separator.
_FLOWED_END_DELSP = re.compile(r"(?<!^--) (?:(\n)(?=-- (?:\n|\Z))|\n|\Z)", re.M)


def _trim(text: str) -> str:
    """Lines right-stripped, blank lines at both ends removed (in passes over the text, not a call
    per line: a text can be a million empty lines)."""
    return _TRAILING_SPACE.sub("", text).strip("\n")


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: lines ending in a space continue on the next line (same quote
    depth); the "-- " signature separator is never flowed."""
    if not _QUOTED_LINE.search(text):
        # No quoted lines, so every line has depth 0: undo the space-stuffing, then join the lines
        # that flow, in two passes over the text (the same as _unflow_lines, a call per line less).
        text = _STUFFED.sub("", text)
        if delsp:
            return _FLOWED_END_DELSP.sub(r"\1", text)
        return _FLOWED_END.sub(" ", text)
    return _unflow_lines(text, delsp)


def _unflow_lines(text: str, delsp: bool) -> str:
    out: list[str] = []
    buf: list[str] = []  # the pieces of a paragraph that flows on
    buf_depth = 0

    def flush() -> None:
        out.append(">" * buf_depth + (" " if buf_depth else "") + "".join(buf))
        buf.clear()

    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # space-stuffing
        if buf and depth != buf_depth:
            flush()
        if content == "-- ":
            if buf:
                flush()
            out.append(">" * depth + (" " if depth else "") + content)
            continue
        flowed = content.endswith(" ")
        if flowed and delsp:
            content = content[:-1]
        buf.append(content)
        buf_depth = depth
        if not flowed:
            flush()
    if buf:
        flush()
    return "\n".join(out)


def _safe(text: str | None) -> str:
    """No NUL (PostgreSQL refuses it) and no lone surrogates (not encodable as UTF-8)."""
    if not text:
        return ""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _safe_json(value):
    if isinstance(value, str):
        return _safe(value)
    if isinstance(value, dict):
        return {str(k): _safe_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_safe_json(v) for v in value]
    return value
