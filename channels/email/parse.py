"""Raw RFC 5322 bytes -> InboundMessage. PROVISIONAL minimal version: being replaced by the full
parser (charsets, HTML, attachments, quote stripping, loop detection)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import re

from hub.messages import InboundMessage, Sender, ThreadHints

_MSGID = re.compile(r"<[^<>\s]+>")


def parse(raw: bytes, *, own_addresses: tuple[str, ...] = ()) -> InboundMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    message_id = (_MSGID.findall(str(msg.get("Message-ID", ""))) or [None])[0]
    if message_id is None:
        message_id = "<sha256-" + hashlib.sha256(raw).hexdigest() + "@servicehub.invalid>"
    from_ = msg.get("From")
    address = from_.addresses[0].addr_spec if from_ and from_.addresses else ""
    name = from_.addresses[0].display_name if from_ and from_.addresses else None
    refs = _MSGID.findall(str(msg.get("In-Reply-To", ""))) + list(reversed(_MSGID.findall(str(msg.get("References", "")))))
    body = msg.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    return InboundMessage(
        channel="email",
        external_id=message_id,
        sender=Sender(address, name or None),
        subject=str(msg.get("Subject", "")) or None,
        text=text,
        thread=ThreadHints(in_reply_to=tuple(dict.fromkeys(refs))),
        raw=raw,
    )
