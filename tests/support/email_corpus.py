"""The public fixture emails (../shared/fixtures/email, plus CPython's own test messages when the
interpreter has them) as a corpus: every file that is meant to be mail, and the ones the hub stores,
copied under fresh Message-IDs for volume tests."""

from __future__ import annotations

import os
import re
from pathlib import Path

from channels.email.parse import parse
from hub.contract.errors import RejectedInput
from tests.conftest import FIXTURES

EMAIL = FIXTURES / "email"

try:
    import test.test_email as _cpython_email_tests

    CPYTHON_DATA = Path(os.path.dirname(_cpython_email_tests.__file__)) / "data"
except ImportError:  # an interpreter without its test package
    CPYTHON_DATA = None

# Bodies without headers (reply-parser fixtures) are not emails; the talon html replies are bodies.
_NOT_EMAIL_DIRS = {"crisp", "zapier", "html_replies"}
# Files among the email fixtures that are not RFC 822 messages: parse must refuse them cleanly.
NOT_AN_EMAIL = {"mail_outlook_1", "msg_19.txt"}


def fixture_emails() -> list[Path]:
    files = [
        p
        for p in sorted(EMAIL.rglob("*"))
        if p.is_file() and not _NOT_EMAIL_DIRS.intersection(p.parts) and not p.name.endswith("_reply_text")
    ]
    if CPYTHON_DATA is not None and CPYTHON_DATA.is_dir():
        files += sorted(CPYTHON_DATA.glob("msg_*.txt"))
    return files


_MESSAGE_ID = re.compile(rb"^message-id[ \t]*:.*(?:\r?\n[ \t].*)*\r?\n", re.I | re.M)


def real_mails() -> list[bytes]:
    """The fixture emails the hub stores (a sender address, some content): real mail of every
    shape (multipart, encoded, attachments, bounces), without the ones rejected on purpose."""
    out = []
    for path in sorted((FIXTURES / "email").rglob("*")):
        if not path.is_file() or {"crisp", "zapier", "html_replies"} & set(path.parts) or path.name.endswith("_reply_text"):
            continue
        raw = path.read_bytes()
        try:
            msg = parse(raw, own_addresses=("support@shop.example",))
        except RejectedInput:
            continue
        if "@" in (msg.sender.address or "") and (msg.text.strip() or msg.html or msg.attachments):
            out.append(raw)
    return out


def copies(corpus: list[bytes], start: int, count: int) -> list[bytes]:
    """corpus repeated, each copy with its own Message-ID (as the first header line)."""
    out = []
    for i in range(start, start + count):
        raw = _MESSAGE_ID.sub(b"", corpus[i % len(corpus)], count=1)
        if raw.startswith(b"From "):  # an mbox envelope line is not a header
            raw = raw.split(b"\n", 1)[1]
        out.append(b"Message-ID: <copy-%d@scale.example>\r\n" % i + raw)
    return out
