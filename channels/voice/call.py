"""A call and its transcript as one InboundMessage: the customer's phone identity, the dialogue turn
by turn as the text, the call record and the structured turns in the metadata."""

from __future__ import annotations

import json

from channels.voice.parse import parse_transcript
from channels.voice.record import Call, CallIn, call_of
from channels.voice.transcript import Transcript, Turn, assign_roles, clean_text, customer_text, render
from hub.contract.messages import InboundMessage, Sender, ThreadHints

CHANNEL = "voice"
NO_SPEECH = "(no speech was transcribed)"


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def call_message(call: Call, transcript: Transcript, *, raw: bytes | None = None, source: str = "api") -> InboundMessage:
    """source: how the call came ("api", or "file:<name>" from the drop folder)."""
    turns = transcript.turns
    said, said_from = customer_text(turns)
    text = render(turns) or NO_SPEECH
    if call.recording_url:
        text += f"\n\nRecording: {call.recording_url}"
    inbound = call.direction == "inbound"
    metadata = {
        "call": {
            "call_id": call.call_id,
            "direction": call.direction,
            "caller": call.caller,
            "callee": call.callee,
            "started_at": _iso(call.started_at),
            "ended_at": _iso(call.ended_at),
            "duration_seconds": call.duration_seconds,
            "recording_url": call.recording_url,
            "language": call.language or transcript.language,
            "agent": call.agent,
            "source": source,
        },
        "transcript": {"format": transcript.format, "roles": transcript.roles},
        "turns": [t.as_json() for t in turns],
        "customer_text": said,
        "customer_text_from": said_from,
    }
    return InboundMessage(
        channel=CHANNEL,
        external_id=call.call_id,
        sender=Sender(call.customer_number, call.customer_name, "phone"),
        subject=f"Call from {call.customer_number}" if inbound else f"Call to {call.customer_number}",
        text=text,
        sent_at=call.started_at,
        thread=ThreadHints(conversation_id=call.conversation_id),
        metadata=metadata,
        raw=raw,
    )


def transcript_of(record: CallIn, raw: bytes | str | dict | None = None, filename: str | None = None) -> Transcript:
    """The record's structured turns, or its transcript document (or `raw`, a transcript file's
    bytes, for a sidecar that names none) read in whatever format it is."""
    if record.turns is not None:
        turns = [
            Turn(t.role, clean_text(t.speaker) or None, t.start, t.end, clean_text(t.text), t.sentiment)
            for t in record.turns
            if clean_text(t.text)
        ]
        turns, roles = assign_roles(turns)
        return Transcript(format="turns", turns=turns, roles=roles)
    document = record.transcript if record.transcript is not None else raw
    return parse_transcript(
        document, record.transcript_filename or filename, format=record.transcript_format
    )


def _document_bytes(record: CallIn) -> bytes | None:
    if isinstance(record.transcript, str):
        return record.transcript.encode("utf-8")
    if isinstance(record.transcript, dict):
        try:
            # ASCII: a lone surrogate somewhere in the document stays escaped, not an error.
            return json.dumps(record.transcript).encode("ascii")
        except (ValueError, RecursionError):
            return None
    return None


def message_from_record(record: CallIn) -> InboundMessage:
    """POST /api/v1/calls: the record checked (numbers, transcript) and turned into a message.
    Raises RejectedInput (UnknownTranscriptFormat, MalformedTranscript) with the reason."""
    call = call_of(record)
    return call_message(call, transcript_of(record), raw=_document_bytes(record), source="api")
