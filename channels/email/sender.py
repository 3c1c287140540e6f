"""Replies out by SMTP (aiosmtplib): the MIME message, threaded so every mail client files it
under the customer's own mail, and the server's answer mapped to the outbox's retry rules.

Threading: In-Reply-To is the customer's newest Message-ID, References all of them oldest first
(RFC 5322 3.6.4), the subject keeps its [#id] token, and Reply-To is the conversation's plus
address (support+c12@...), so a reply threads back even when the client drops the headers.

Our Message-ID is derived from the outbox row's idempotency key: a retry after a crash (the mail
went out, the worker died before marking it sent) sends the same Message-ID again, and the
customer's client and the receiving server see the same message rather than a second one. It is
signed with the installation's message-id key (hub/contract/signing.py): the hub threads a mail by one of
our ids only when it verifies, so nobody can compute the id of a mail sent to someone else.

Auto-Submitted is not set: agents' replies are written by people (RFC 3834 reserves it for
automatic mail). Loops are prevented on the way in instead: mail from our own addresses and
machine mail are flagged by the parser and never answered automatically.
"""

from __future__ import annotations

import email.policy
import logging
import mimetypes
import re
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

import aiosmtplib

from channels.base import Delivery, PermanentFailure, TemporaryFailure
from hub.contract import clock
from hub.contract.messages import OutboundMessage
from hub.contract.signing import sign_message_id

log = logging.getLogger(__name__)

# 998: RFC 5322's hard line limit. With the stdlib's 78, a long Message-ID in In-Reply-To or
# References (Gmail's are) gets RFC 2047-encoded, which no client recognises as an id any more.
POLICY = email.policy.SMTP.clone(max_line_length=998)
POLICY_UTF8 = email.policy.SMTPUTF8.clone(max_line_length=998)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_MSGID = re.compile(r"^<[^<>\s@]+@[^<>\s@]+>$")
MAX_REFERENCES = 20


def _header(value: str | None) -> str:
    """One header line: CR, LF and other control characters would forge headers."""
    return _CONTROL.sub(" ", value or "").strip()


def message_id_for(message: OutboundMessage, domain: str, key: bytes) -> str:
    """Stable per outbox row (the same idempotency_key always gets the same Message-ID), and
    signed with `key`, the installation's message-id key."""
    return sign_message_id(key, conversation_id=message.conversation_id, seed=message.idempotency_key, domain=domain)


def _thread_ids(reply_to: tuple[str, ...]) -> list[str]:
    """The customer's Message-IDs, newest first, bracketed; anything that is not an id dropped."""
    out = []
    for value in reply_to:
        value = _header(value)
        if value and not value.startswith("<"):
            value = f"<{value}>"
        if _MSGID.match(value) and value not in out:
            out.append(value)
    return out


def build_message(
    message: OutboundMessage,
    *,
    from_address: str,
    from_name: str,
    message_id: str,
    reply_to_address: str | None,
) -> EmailMessage:
    """The MIME message for one reply: text, and HTML as an alternative when there is some,
    attachments after them."""
    recipient = _header(message.recipient)
    utf8 = not (from_address + recipient).isascii()
    msg = EmailMessage(policy=POLICY_UTF8 if utf8 else POLICY)
    msg["From"] = formataddr((_header(from_name), from_address)) if from_name else from_address
    msg["To"] = recipient
    msg["Subject"] = _header(message.subject)
    msg["Date"] = format_datetime(clock.now(), usegmt=True)
    msg["Message-ID"] = message_id
    ids = _thread_ids(message.reply_to)
    if ids:
        msg["In-Reply-To"] = ids[0]
        msg["References"] = " ".join(reversed(ids[:MAX_REFERENCES]))
    if reply_to_address:
        msg["Reply-To"] = reply_to_address
    msg.set_content(message.text or "", subtype="plain", charset="utf-8")
    if message.html:
        msg.add_alternative(message.html, subtype="html", charset="utf-8")
    for attachment in message.attachments:
        if attachment.data is None:
            # Sending the reply without a file the agent attached would mislead both sides.
            raise PermanentFailure(f"attachment {attachment.filename!r} has no data to send (blob {attachment.blob_sha256})")
        ctype = attachment.content_type or mimetypes.guess_type(attachment.filename)[0] or "application/octet-stream"
        maintype, _, subtype = ctype.lower().partition("/")
        msg.add_attachment(attachment.data, maintype=maintype or "application", subtype=subtype or "octet-stream",
                           filename=attachment.filename or "attachment")
    return msg


def _plus_address(address: str, conversation_id: int) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local.split('+', 1)[0]}+c{conversation_id}@{domain}"


class SmtpSender:
    """Delivers through one submission server (settings.email.smtp)."""

    def __init__(self, *, host: str, port: int, security: str, username: str | None, password: str | None,
                 timeout_seconds: float, from_address: str, from_name: str, message_id_key: Callable[[], bytes]):
        """message_id_key: returns the key our Message-IDs are signed with (read on first use)."""
        self.host = host
        self.port = port
        self.security = security
        self.username = username or None
        self.password = password or None
        self.timeout_seconds = timeout_seconds
        self.from_address = from_address
        self.from_name = from_name
        self.domain = from_address.rpartition("@")[2] or "servicehub.invalid"
        self._message_id_key = message_id_key
        self._key: bytes | None = None

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = self._message_id_key()
        return self._key

    def build(self, message: OutboundMessage) -> tuple[EmailMessage, str]:
        message_id = message_id_for(message, self.domain, self.key)
        return (
            build_message(
                message,
                from_address=self.from_address,
                from_name=self.from_name,
                message_id=message_id,
                reply_to_address=_plus_address(self.from_address, message.conversation_id),
            ),
            message_id,
        )

    async def send(self, message: OutboundMessage) -> Delivery:
        recipient = _header(message.recipient)
        if "@" not in recipient:
            raise PermanentFailure(f"{recipient!r} is not an email address")
        mime, message_id = self.build(message)
        utf8 = not (self.from_address + recipient).isascii()
        try:
            await aiosmtplib.send(
                mime.as_bytes(policy=mime.policy),
                sender=self.from_address,
                recipients=[recipient],
                mail_options=["SMTPUTF8"] if utf8 else None,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.security == "ssl",
                start_tls=True if self.security == "starttls" else False,
                timeout=self.timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0] if exc.recipients else None
            if refused is None:
                raise TemporaryFailure(f"the SMTP server refused the recipient: {exc}") from None
            raise _from_code(refused.code, refused.message, f"the SMTP server refused {recipient}") from None
        except aiosmtplib.SMTPResponseException as exc:
            raise _from_code(exc.code, exc.message, _what(exc)) from None
        except (aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected,
                ConnectionError, TimeoutError, OSError) as exc:
            raise TemporaryFailure(f"the SMTP server {self.host}:{self.port} could not be reached: {exc}") from None
        except aiosmtplib.SMTPException as exc:
            # e.g. STARTTLS or AUTH required by our settings but not offered: someone has to fix
            # a setting; retrying with backoff keeps the reply until they have.
            raise TemporaryFailure(f"sending by SMTP to {self.host}:{self.port} failed: {exc}") from None
        log.info("email to %s sent as %s", recipient, message_id)
        return Delivery(external_id=message_id)


def _what(exc: aiosmtplib.SMTPResponseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return "the SMTP server refused our login"
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return f"the SMTP server refused the sender {exc.sender}"
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return "the SMTP server refused the message"
    if isinstance(exc, aiosmtplib.SMTPHeloError):
        return "the SMTP server refused our greeting"
    return "the SMTP server answered"


def _from_code(code: int, text: str, what: str):
    detail = f"{what}: {code} {_header(text)}".strip()
    if 400 <= code < 500 or code < 0:
        return TemporaryFailure(detail)
    if 500 <= code < 600:
        return PermanentFailure(detail)
    return TemporaryFailure(detail)
