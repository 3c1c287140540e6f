"""Recognise a transcript's format and read it into turns.

parse(data, filename) -> list[Turn]; parse_transcript() also says which format it was, where the
roles came from and the language the transcript states. The format is recognised from the content.
A format hint (the API's transcript_format) or a .vtt/.srt file name narrows the reading to that
format, and content that does not fit it is a MalformedTranscript; .txt and .json names are no hint.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import PurePath
from typing import Any

from channels.voice.formats import aws, speech_apis, subtitles, text
from channels.voice.transcript import (
    MalformedTranscript,
    Transcript,
    Turn,
    UnknownTranscriptFormat,
    assign_roles,
    clean_text,
)

# The names a format hint may use, and what each is.
FORMATS: dict[str, str] = {
    "webvtt": "WebVTT (.vtt, speakers as <v Name> voice spans, e.g. Microsoft Teams)",
    "srt": "SubRip (.srt)",
    "aws_transcribe": "Amazon Transcribe JSON (speaker or channel labels)",
    "aws_call_analytics": "Amazon Transcribe Call Analytics / Amazon Connect Contact Lens JSON (participant roles)",
    "aws_pca": "Amazon Transcribe Post-Call Analytics JSON",
    "deepgram": "Deepgram JSON",
    "assemblyai": "AssemblyAI JSON",
    "whisper": "Whisper JSON (OpenAI verbose_json, whisper-timestamped, WhisperX)",
    "text": "plain text with one 'Agent: ...' / 'Customer: ...' line per turn",
}
SUPPORTED = "; ".join(FORMATS.values())

_JSON_FORMATS: list[tuple[str, Callable[[Any], bool], Callable[[dict], list[Turn]], Callable[[dict], str | None]]] = [
    ("aws_pca", aws.is_pca, aws.parse_pca, aws.pca_language),
    ("aws_call_analytics", aws.is_call_analytics, aws.parse_call_analytics, lambda d: d.get("LanguageCode") or None),
    ("aws_transcribe", aws.is_transcribe, aws.parse_transcribe, aws.transcribe_language),
    ("deepgram", speech_apis.is_deepgram, speech_apis.parse_deepgram, speech_apis.deepgram_language),
    ("assemblyai", speech_apis.is_assemblyai, speech_apis.parse_assemblyai, speech_apis.assemblyai_language),
    ("whisper", speech_apis.is_whisper, speech_apis.parse_whisper, speech_apis.whisper_language),
]
MAX_LABEL = 100
_BY_EXTENSION = {".vtt": "webvtt", ".webvtt": "webvtt", ".srt": "srt"}
_AUDIO_MAGIC = (b"RIFF", b"ID3", b"OggS", b"fLaC", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")


def _unknown(why: str) -> UnknownTranscriptFormat:
    return UnknownTranscriptFormat(f"{why}; supported transcript formats: {SUPPORTED}")


def decode(data: bytes) -> str:
    """Transcripts are text: UTF-8 (with or without BOM) or UTF-16 with a BOM."""
    if data.startswith(_AUDIO_MAGIC) or data[4:8] == b"ftyp":
        raise _unknown("this is an audio recording, not a transcript (send its transcript; a link to the recording goes in recording_url)")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _unknown("the transcript is not UTF-8 text") from None


def _guarded(fmt: str, fn: Callable[[], list[Turn]]) -> list[Turn]:
    """Recognised documents can still be broken in any field: say so, never crash."""
    try:
        return fn()
    except (MalformedTranscript, UnknownTranscriptFormat):
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise MalformedTranscript(f"not a valid {FORMATS[fmt]} document: {type(exc).__name__}: {exc}") from None


def _from_json(doc: Any, hint: str | None) -> Transcript:
    for name, recognise, read, language in _JSON_FORMATS:
        if (hint is None or hint == name) and recognise(doc):
            turns = _guarded(name, lambda read=read: read(doc))
            lang = _guarded(name, lambda language=language: language(doc))
            return Transcript(format=name, turns=turns, language=lang if isinstance(lang, str) else None)
    if hint is not None:
        raise MalformedTranscript(f"the transcript is not a {FORMATS[hint]} document")
    raise _unknown("the JSON document is not a transcript format the hub knows")


def _from_text(content: str, hint: str | None) -> Transcript:
    stripped = content.lstrip("\ufeff").strip()
    if not stripped:
        raise MalformedTranscript("the transcript is empty")
    if hint in (None, "webvtt") and subtitles.is_webvtt(stripped):
        return Transcript("webvtt", _guarded("webvtt", lambda: subtitles.parse_captions(stripped, "vtt")))
    if hint in (None, "srt") and subtitles.is_srt(stripped):
        return Transcript("srt", _guarded("srt", lambda: subtitles.parse_captions(stripped, "srt")))
    if hint in (None, "text") and text.looks_like(stripped):
        return Transcript("text", text.parse_text(stripped))
    if stripped[0] in "{[" and hint not in ("webvtt", "srt", "text"):
        try:
            doc = json.loads(stripped)
        except (ValueError, RecursionError) as exc:
            raise _unknown(f"the transcript looks like JSON but does not parse ({exc})") from None
        return _from_json(doc, hint)
    if hint is not None:
        raise MalformedTranscript(f"the transcript is not {FORMATS[hint]}")
    raise _unknown("the transcript's format is not recognised")


def _label(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    # Cut before cleaning: one long label can be shared by every turn of a speaker.
    return clean_text(str(value)[: 4 * MAX_LABEL])[:MAX_LABEL] or None


def _sane(turn: Turn) -> Turn:
    """Labels come from the document as it is: text, and short enough to show."""
    label = _label(turn.speaker)
    return turn if label == turn.speaker else replace(turn, speaker=label)


def parse_transcript(
    data: bytes | str | dict | list, filename: str | None = None, *, format: str | None = None
) -> Transcript:
    """Read a transcript in any supported format. format: a name from FORMATS, or None to
    recognise it. Raises UnknownTranscriptFormat (naming the supported formats) or
    MalformedTranscript; both are RejectedInput."""
    if format is not None and format not in FORMATS:
        raise _unknown(f"unknown transcript_format {format!r} (use one of: {', '.join(FORMATS)})")
    hint = format
    if hint is None and filename:
        ext = PurePath(filename).suffix.lower()
        # Caption extensions are trusted; .txt and .json are not (a .txt may well hold WebVTT).
        hint = _BY_EXTENSION.get(ext)
    if not isinstance(data, (bytes, bytearray, str, dict, list)):
        raise _unknown(f"a transcript is text or a JSON document, not {type(data).__name__}")
    if isinstance(data, (dict, list)):
        if hint in ("webvtt", "srt", "text"):
            raise MalformedTranscript(f"a JSON document is not {FORMATS[hint]}")
        found = _from_json(data, hint)
    else:
        content = decode(data) if isinstance(data, (bytes, bytearray)) else data
        if "\x00" in content:
            raise _unknown("the transcript is binary data, not text")
        found = _from_text(content, hint)
    turns, roles = assign_roles([_sane(t) for t in found.turns])
    return Transcript(format=found.format, turns=turns, roles=roles, language=found.language)


def parse(data: bytes | str | dict | list, filename: str | None = None, *, format: str | None = None) -> list[Turn]:
    """The turns of a transcript in any supported format (see parse_transcript)."""
    return parse_transcript(data, filename, format=format).turns
