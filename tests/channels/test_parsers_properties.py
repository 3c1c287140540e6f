"""Property-based tests of the three channel parsers that read what a stranger sends: real fixture
mails, Telegram updates and call transcripts, mutated the way broken software, broken links and
attackers mutate them, must give a message or the documented rejection (hub.contract.errors.RejectedInput),
never anything else.

  channels.email.parse(raw)                 -> InboundMessage, or RejectedInput (not an email at all)
  channels.telegram.parse_update(update)    -> InboundMessage or None; never raises
  channels.telegram.parse_update_strict()   -> InboundMessage or None, or MalformedUpdate (a RejectedInput)
  channels.voice.parse(data, filename)      -> list of Turns, or RejectedInput (unknown or malformed)

What comes out must also be storable: text is valid UTF-8 without NUL, metadata is JSON.
The example counts keep the three under about 30 seconds together on a shared two-core machine.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.email import parse as parse_email
from channels.telegram import parse_update
from channels.telegram.parse import MalformedUpdate, parse_update_strict
from channels.voice import Turn
from channels.voice import parse as parse_transcript
from hub.contract.errors import RejectedInput
from hub.contract.messages import InboundMessage
from tests.conftest import FIXTURES
from tests.support.email_corpus import NOT_AN_EMAIL, fixture_emails

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

EMAILS = [p.read_bytes() for p in fixture_emails() if p.name not in NOT_AN_EMAIL and p.stat().st_size < 30_000]
UPDATES = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((FIXTURES / "telegram" / "updates").glob("*.json"))]
TRANSCRIPTS = [(p.read_bytes(), p.name) for p in sorted((FIXTURES / "voice").rglob("*")) if p.is_file()]

# JSON values as a webhook or a transcript service could send them (standard JSON: no NaN).
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
CHARSET_LABELS = st.sampled_from(
    ["utf-8", "UTF8", "gb2312", "big5", "shift_jis", "iso-2022-jp", "koi8-r", "utf-16", "utf-7", "x-unknown",
     "base64", "undefined", "", '"', "utf-8*en", "\x00", "a" * 300]
) | st.text(max_size=20)


def assert_storable(msg: InboundMessage) -> None:
    assert isinstance(msg, InboundMessage)
    assert isinstance(msg.text, str) and "\x00" not in msg.text
    msg.text.encode("utf-8")
    json.dumps(msg.metadata)


# --- email ---------------------------------------------------------------------------------------


def _header_lines(raw: bytes) -> list[bytes]:
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    return [line for line in head.split(b"\n") if b":" in line[:80] and not line[:1].isspace()]


@st.composite
def mutated_mails(draw) -> bytes:
    raw = bytearray(draw(st.sampled_from(EMAILS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "duplicate header", "charset", "long line", "boundary", "splice"]))
        at = draw(st.integers(0, max(0, len(raw) - 1)))
        if kind == "flip" and raw:
            for _ in range(draw(st.integers(1, 8))):
                raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del raw[at:]
        elif kind == "duplicate header":
            lines = _header_lines(bytes(raw))
            if lines:
                line = draw(st.sampled_from(lines))
                raw[0:0] = (line + b"\r\n") * draw(st.integers(1, 60))
        elif kind == "charset":
            label = draw(CHARSET_LABELS).encode("utf-8", "surrogateescape")
            raw = bytearray(bytes(raw).replace(b"charset=", b"charset=" + label + b";x=", 1))
        elif kind == "long line":
            raw[at:at] = draw(st.sampled_from([b"x", b"(", b"<", b"_", b" ", b"a@", b"=?x?q?", b"> ", b"\r\n"])) * draw(st.integers(1, 20_000))
        elif kind == "boundary":
            raw = bytearray(bytes(raw).replace(b"boundary=", b"boundary=" + draw(st.binary(max_size=8)), 1))
        else:
            raw[at:at] = draw(st.binary(max_size=64))
    return bytes(raw)


@SETTINGS
@given(mutated_mails())
def test_a_mutated_real_mail_is_a_message_or_rejected(raw):
    try:
        msg = parse_email(raw, own_addresses=("support@shop.example",))
    except RejectedInput:
        return
    assert_storable(msg)
    assert msg.channel == "email" and msg.external_id


# --- Telegram ------------------------------------------------------------------------------------


def _paths(value, prefix=()) -> list[tuple]:
    """Every place in a JSON value: dict keys and list indexes."""
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += _paths(child, (*prefix, i))
    return out


def _set(root, path: tuple, value):
    if not path:
        return value
    node = root
    for step in path[:-1]:
        node = node[step]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return root


_DELETE = object()


@st.composite
def mutated_json(draw, documents: list):
    doc = copy.deepcopy(draw(st.sampled_from(documents)))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_paths(doc)))
        action = draw(st.sampled_from(["replace", "delete", "text"]))
        if action == "delete" and path:
            doc = _set(doc, path, _DELETE)
        elif action == "text":
            doc = _set(doc, path, draw(st.text(max_size=200) | st.sampled_from(["/start abc", "@ShopHelpBot hi", "\x00\ud800"])))
        else:
            doc = _set(doc, path, draw(JSON))
    return doc


@st.composite
def mutated_updates(draw):
    update = draw(mutated_json(UPDATES))
    message = update.get("message") if isinstance(update, dict) else None
    if isinstance(message, dict) and isinstance(message.get("chat"), dict) and draw(st.booleans()):
        message["chat"]["type"] = draw(st.sampled_from(["group", "supergroup", "channel", "private", 7]))
        message["entities"] = draw(st.lists(st.fixed_dictionaries(
            {"type": st.sampled_from(["mention", "bot_command", "text_mention", "bold"]), "offset": st.integers(-5, 50),
             "length": st.integers(-5, 50)}, optional={"user": JSON}) | JSON, max_size=6))
    return update


@SETTINGS
@given(mutated_updates())
def test_a_mutated_real_update_is_a_message_none_or_rejected(update):
    kwargs = {"bot": "shop", "bot_username": "ShopHelpBot", "bot_id": 424242}
    lenient = parse_update(update, **kwargs)
    assert lenient is None or isinstance(lenient, InboundMessage)
    try:
        strict = parse_update_strict(update, **kwargs)
    except MalformedUpdate as exc:
        assert isinstance(exc, RejectedInput) and lenient is None
        return
    assert strict == lenient
    if strict is not None:
        assert_storable(strict)


# --- voice ---------------------------------------------------------------------------------------


@st.composite
def mutated_transcript_bytes(draw) -> tuple[bytes, str | None]:
    data, name = draw(st.sampled_from(TRANSCRIPTS))
    raw = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, max(0, len(raw) - 1)))
        kind = draw(st.sampled_from(["flip", "truncate", "splice", "repeat"]))
        if kind == "flip" and raw:
            raw[at] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del raw[at:]
        elif kind == "splice":
            raw[at:at] = draw(st.binary(max_size=32) | st.sampled_from([b"\n" * 500, b"<v " * 300, b"-->", b"{" * 300, b"\x00"]))
        else:
            raw += bytes(raw[at : at + 2_000]) * draw(st.integers(1, 5))
    return bytes(raw), draw(st.sampled_from([name, None, "call.txt", "call.vtt", "call.srt", "call.json"]))


def _check_turns(turns) -> None:
    assert isinstance(turns, list) and all(isinstance(t, Turn) for t in turns)
    for t in turns:
        assert isinstance(t.text, str) and "\x00" not in t.text
        t.text.encode("utf-8")
        json.dumps(t.as_json())


@SETTINGS
@given(mutated_transcript_bytes())
def test_a_mutated_real_transcript_is_turns_or_rejected(case):
    data, filename = case
    try:
        turns = parse_transcript(data, filename)
    except RejectedInput:
        return
    _check_turns(turns)


JSON_TRANSCRIPTS = [json.loads(data) for data, name in TRANSCRIPTS if Path(name).suffix == ".json"]


@SETTINGS
@given(mutated_json(JSON_TRANSCRIPTS), st.sampled_from([None, "aws_transcribe", "aws_pca", "deepgram", "assemblyai", "whisper"]))
def test_a_mutated_transcript_document_is_turns_or_rejected(doc, fmt):
    try:
        turns = parse_transcript(doc, format=fmt)
    except RejectedInput:
        return
    _check_turns(turns)
