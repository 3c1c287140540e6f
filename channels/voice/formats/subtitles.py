"""Caption files: WebVTT (Teams, Zoom, most recorders) and SubRip (.srt), read with webvtt-py.

The speaker of a cue is its voice span (<v Adrian Petrescu>, the WebVTT way, as Teams writes it) or,
in files without voice spans, a 'Name: ' label in front of the text (Zoom, WhisperX's
'[SPEAKER_00]: '). A cue holding two voices becomes two turns with the cue's times.
"""

from __future__ import annotations

import html
import io
import re

import webvtt
from webvtt.errors import MalformedCaptionError, MalformedFileError
from webvtt.models import Caption

from channels.voice.formats.text import split_speaker
from channels.voice.transcript import MalformedTranscript, Turn, clean_text, role_of_label

# A tag runs to the next ">" but not over another "<", so no "<" rescans the rest of the line.
_TAG = re.compile(r"<[^<>]*+>")
# webvtt-py's voice span (Caption.VOICE_SPAN_PATTERN), with a name that cannot run over another "<".
_VOICE = re.compile(r"<v(?:\.\w+)*+\s++([^>\s][^<>]*+)>")
# An index line, then a timing line (no blank line between them: \s* there would backtrack).
_SRT_START = re.compile(r"^\s*+\d++[^\S\n]*+\n[^\S\n]*+\d+:\d{1,2}:\d{1,2}[,.]\d+\s*-->")


def is_webvtt(text: str) -> bool:
    return text.lstrip("\ufeff").startswith("WEBVTT")


def is_srt(text: str) -> bool:
    return bool(_SRT_START.match(text.lstrip("\ufeff")))


def _read(text: str, fmt: str):
    try:
        if fmt == "vtt":
            return webvtt.from_string(text.lstrip("\ufeff"))
        return webvtt.WebVTT.from_buffer(io.StringIO(text.lstrip("\ufeff")), format="srt")
    except (MalformedFileError, MalformedCaptionError, ValueError) as exc:
        name = "WebVTT" if fmt == "vtt" else "SubRip (.srt)"
        raise MalformedTranscript(f"not a readable {name} file: {exc}") from None


def _cue_turns(caption: Caption, use_labels: bool) -> list[tuple[str | None, str]]:
    """(speaker, text) pieces of one cue, in order."""
    pieces: list[tuple[str | None, list[str]]] = []
    voice = None
    for line in caption.lines:
        match = _VOICE.match(line.strip())
        if match:
            voice = match.group(1).strip()
        plain = html.unescape(_TAG.sub("", line)).strip()
        if not plain:
            continue
        speaker = voice
        if voice is None and use_labels:
            label, _, said = split_speaker(plain)
            if label is not None:
                speaker, plain = label, said
            elif pieces:
                speaker = pieces[-1][0]
        if pieces and pieces[-1][0] == speaker:
            pieces[-1][1].append(plain)
        else:
            pieces.append((speaker, [plain]))
    return [(speaker, " ".join(text)) for speaker, text in pieces]


def parse_captions(text: str, fmt: str = "vtt") -> list[Turn]:
    """fmt: 'vtt' or 'srt'."""
    captions = list(_read(text, fmt))
    has_voices = any(_VOICE.search(line) for c in captions for line in c.lines)
    turns = []
    for caption in captions:
        start = caption.start_time.in_milliseconds() / 1000
        end = caption.end_time.in_milliseconds() / 1000
        for speaker, said in _cue_turns(caption, use_labels=not has_voices):
            said = clean_text(said)
            if said:
                turns.append(Turn(role=role_of_label(speaker), speaker=speaker, start=start, end=end, text=said))
    return turns
