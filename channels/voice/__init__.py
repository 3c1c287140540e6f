"""The voice channel: phone calls, stored as conversations with their transcripts.

A call arrives by POST /api/v1/calls (channel.py, mounted by the hub: the call record with structured turns or
a transcript document) or as files in the drop folder (settings.voice_drop_dir; dropfolder.py says
what to put there). Either way it becomes one InboundMessage (call.py): the customer's number in
E.164 is their phone identity (the caller of an inbound call, the callee of an outbound one), the
call id its external id (the same call twice is stored once), the text the dialogue turn by turn
("[00:03] Customer: ..."), the metadata the call record, the turns and "customer_text", what the
customer said. A call starts its own conversation unless the record names one (conversation_id).

parse(data, filename) reads any supported transcript format into Turns (parse.py; the formats in
formats/; the role rule for numbered speakers in transcript.py) and raises UnknownTranscriptFormat,
naming the supported formats, for anything else.

Replies cannot go out by phone: send() fails for good with the reason (reply by email, call back).
"""

from __future__ import annotations

from channels.voice.call import CHANNEL, call_message, message_from_record
from channels.voice.channel import VoiceChannel
from channels.voice.dropfolder import message_from_file
from channels.voice.openapi import OPENAPI_MODELS, openapi_paths
from channels.voice.parse import FORMATS, SUPPORTED, parse, parse_transcript
from channels.voice.record import CallIn, TurnIn
from channels.voice.transcript import (
    MalformedTranscript,
    Transcript,
    Turn,
    UnknownTranscriptFormat,
    render,
)

__all__ = [
    "CHANNEL", "FORMATS", "OPENAPI_MODELS", "SUPPORTED", "CallIn", "MalformedTranscript", "Transcript", "Turn", "TurnIn",
    "UnknownTranscriptFormat", "VoiceChannel", "call_message", "from_settings", "message_from_file",
    "message_from_record", "openapi_paths", "parse", "parse_transcript", "render",
]


def from_settings(settings) -> VoiceChannel:
    """Always on: the API route needs no configuration; the drop folder is watched when
    settings.voice_drop_dir is set. voice_poll_seconds, if the settings have it, sets how often."""
    return VoiceChannel(
        settings.voice_drop_dir,
        poll_seconds=float(getattr(settings, "voice_poll_seconds", 2.0)),
        max_file_bytes=int(getattr(settings, "max_attachment_bytes", 25 * 1_048_576)),
    )
