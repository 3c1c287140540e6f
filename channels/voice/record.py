"""The call record: what POST /api/v1/calls takes and what a drop folder's sidecar file holds.

One shape for both (CallIn), so a system can post a call or drop it as a file with the same JSON.
The customer is the caller of an inbound call and the callee of an outbound one; their number must
be a phone number in international form (+ and country code; tel: and sip: URIs are read too).
The other number is our line, possibly an internal extension, and is kept as given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import phonenumbers
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from channels.voice.parse import FORMATS
from hub.contract.errors import RejectedInput

MAX_TURNS = 10_000
TranscriptFormat = Literal[
    "webvtt", "srt", "aws_transcribe", "aws_call_analytics", "aws_pca", "deepgram", "assemblyai", "whisper", "text"
]
assert set(TranscriptFormat.__args__) == set(FORMATS)  # the hint's values are the parser's formats


class TurnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["customer", "agent", "unknown"] = "unknown"
    speaker: str | None = Field(default=None, max_length=200, description="the transcript's label (a name, spk_0)")
    start: float | None = Field(default=None, ge=0, le=1_000_000, allow_inf_nan=False, description="seconds from the start of the call")
    end: float | None = Field(default=None, ge=0, le=1_000_000, allow_inf_nan=False)
    text: str = Field(min_length=1, max_length=100_000, pattern=r"\S")
    sentiment: Literal["positive", "negative", "neutral", "mixed"] | None = None


class CallIn(BaseModel):
    """A phone call with its transcript: structured `turns`, or a `transcript` document in any
    supported format (a string, or a JSON object for the JSON formats)."""

    model_config = ConfigDict(extra="forbid")

    call_id: str = Field(min_length=1, max_length=500, pattern=r"\S", description="unique per call: replays are deduplicated")
    caller: str = Field(min_length=1, max_length=100, description="the number that called (+E.164)")
    callee: str = Field(min_length=1, max_length=100, description="the number called (+E.164, or our extension)")
    direction: Literal["inbound", "outbound"] = Field(description="inbound: the caller is the customer; outbound: the callee")
    started_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    recording_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://\S+$")
    language: str | None = Field(default=None, max_length=35, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$")
    conversation_id: int | None = Field(default=None, ge=1, le=2_147_483_647, description="join this conversation of the customer")
    customer_name: str | None = Field(default=None, max_length=200)
    agent: str | None = Field(default=None, max_length=200, description="who took or made the call")
    turns: list[TurnIn] | None = Field(default=None, min_length=1, max_length=MAX_TURNS)
    transcript: str | dict[str, Any] | None = Field(
        default=None, description="a transcript document: " + "; ".join(FORMATS.values())
    )
    transcript_format: TranscriptFormat | None = Field(default=None, description="skip recognising the format")
    transcript_filename: str | None = Field(default=None, max_length=300, description="its file name (.vtt, .srt...) as a hint")

    @field_validator("call_id", "caller", "callee", "recording_url", "customer_name", "agent", "transcript_filename")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value

    @field_validator("started_at", "ended_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValueError("the time is out of range") from None

    @model_validator(mode="after")
    def _one_transcript(self, info: ValidationInfo):
        if info.context and info.context.get("transcript_file"):
            # A drop folder sidecar: the transcript is the file beside it.
            if self.turns is not None or self.transcript is not None:
                raise ValueError(f"the transcript is the file {info.context['transcript_file']}; the sidecar must not hold one too")
        elif (self.turns is None) == (self.transcript is None):
            raise ValueError("give the transcript either as turns or as a transcript document (one of them)")
        if isinstance(self.transcript, str) and not self.transcript.strip():
            raise ValueError("the transcript is empty")
        if self.ended_at is not None and self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        return self


def record_from_json(data: Any, where: str = "call record", *, transcript_file: str | None = None) -> CallIn:
    """A CallIn from parsed JSON (a sidecar file), with the API's error wording. transcript_file:
    the transcript is that file, so the record must not hold one."""
    if not isinstance(data, dict):
        raise RejectedInput(f"the {where} must be a JSON object")
    try:
        return CallIn.model_validate(data, context={"transcript_file": transcript_file} if transcript_file else None)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise RejectedInput(f"{where}: {field}: {first['msg']}") from None


# --- numbers ----------------------------------------------------------------------------------


def _strip_uri(number: str) -> str:
    """'sip:+442079460958@pbx.example;user=phone' / 'tel:+44-20-7946-0958' -> the number."""
    value = number.strip()
    lower = value.lower()
    if lower.startswith(("sip:", "sips:", "tel:")):
        value = value.split(":", 1)[1]
        value = value.split("@", 1)[0].split(";", 1)[0]
    return value.strip()


def e164(number: str, field: str) -> str:
    """A customer's number in E.164, or RejectedInput saying what is wrong with it."""
    value = _strip_uri(number)
    digits = "".join(c for c in value if c not in " -().")
    if digits.startswith("00") and digits[2:].isdigit():
        value = "+" + digits[2:]  # the international prefix most PBXs write
    # A number without a country code is refused, not guessed: a wrong guess would file the call
    # under someone else's customer.
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise RejectedInput(
            f"{field}: {number!r} is not a phone number in international form (+ and the country code, e.g. +442079460958): {exc}"
        ) from None
    if not phonenumbers.is_possible_number(parsed):
        raise RejectedInput(f"{field}: {number!r} is not a possible phone number (wrong length for its country)")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def line_number(number: str | None) -> str | None:
    """Our side's number: E.164 where it is one, else as given (an extension, a SIP user)."""
    if not number:
        return None
    try:
        return e164(number, "line")
    except RejectedInput:
        return number.strip()[:100] or None


@dataclass(frozen=True)
class Call:
    """A call with its customer's number normalised (what the message is built from)."""

    call_id: str
    customer_number: str
    direction: str
    started_at: datetime
    caller: str | None = None
    callee: str | None = None
    ended_at: datetime | None = None
    recording_url: str | None = None
    language: str | None = None
    conversation_id: int | None = None
    customer_name: str | None = None
    agent: str | None = None

    @property
    def duration_seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        seconds = (self.ended_at - self.started_at).total_seconds()
        return seconds if math.isfinite(seconds) and seconds >= 0 else None


def call_of(record: CallIn) -> Call:
    if record.direction == "inbound":
        customer = e164(record.caller, "caller")
        caller, callee = customer, line_number(record.callee)
    else:
        customer = e164(record.callee, "callee")
        caller, callee = line_number(record.caller), customer
    return Call(
        call_id=record.call_id.strip(),
        customer_number=customer,
        direction=record.direction,
        started_at=record.started_at,
        caller=caller,
        callee=callee,
        ended_at=record.ended_at,
        recording_url=record.recording_url,
        language=record.language,
        conversation_id=record.conversation_id,
        customer_name=(record.customer_name or "").strip() or None,
        agent=(record.agent or "").strip() or None,
    )
