"""Speech-to-text services' JSON: Deepgram (pre-recorded), AssemblyAI, and Whisper (OpenAI's
verbose_json, whisper-timestamped, WhisperX with speakers).

Turns: the service's utterances where it made them; otherwise consecutive words of one speaker;
otherwise its segments; otherwise the whole transcript as one turn. Speakers are numbered by the
service (Speaker 0, Speaker A, SPEAKER_00) and so have no role.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channels.voice.transcript import Turn, clean_text, sentiment_of


def _s(value) -> str:
    return value if isinstance(value, str) else ""


def _num(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value == value and abs(value) != float("inf") else None


def _words_to_turns(words: list, text_of: Callable[[dict], str], speaker_of: Callable[[dict], str | None],
                    scale: float = 1.0) -> list[Turn]:
    turns: list[Turn] = []
    current: dict | None = None
    for w in words:
        if not isinstance(w, dict):
            continue
        speaker = speaker_of(w)
        if current is None or speaker != current["speaker"]:
            if current is not None:
                turns.append(_close(current))
            current = {"speaker": speaker, "start": _num(w.get("start")), "end": None, "words": []}
        current["words"].append(text_of(w))
        end = _num(w.get("end"))
        if end is not None:
            current["end"] = end
    if current is not None:
        turns.append(_close(current))
    return [_scaled(t, scale) for t in turns if t.text]


def _close(current: dict) -> Turn:
    return Turn("unknown", current["speaker"], current["start"], current["end"], clean_text(" ".join(current["words"])))


def _scaled(turn: Turn, scale: float) -> Turn:
    if scale == 1.0:
        return turn
    return Turn(
        turn.role, turn.speaker,
        turn.start * scale if turn.start is not None else None,
        turn.end * scale if turn.end is not None else None,
        turn.text, turn.sentiment,
    )


# --- Deepgram ---------------------------------------------------------------------------------


def is_deepgram(doc: Any) -> bool:
    results = doc.get("results") if isinstance(doc, dict) else None
    channels = results.get("channels") if isinstance(results, dict) else None
    return (
        isinstance(channels, list)
        and bool(channels)
        and all(isinstance(c, dict) and isinstance(c.get("alternatives"), list) for c in channels)
    )


def parse_deepgram(doc: dict) -> list[Turn]:
    results = doc["results"]
    channels = results["channels"]
    multichannel = len(channels) > 1

    def label(speaker, channel) -> str | None:
        if multichannel:
            return f"Channel {channel}"
        return f"Speaker {speaker}" if speaker is not None and not isinstance(speaker, (dict, list)) else None

    utterances = results.get("utterances")
    if isinstance(utterances, list) and utterances:
        return [
            Turn(
                "unknown",
                label(u.get("speaker"), u.get("channel", 0)),
                _num(u.get("start")),
                _num(u.get("end")),
                clean_text(u.get("transcript")),
                sentiment_of(u.get("sentiment")),
            )
            for u in utterances
            if isinstance(u, dict) and clean_text(u.get("transcript"))
        ]
    turns: list[Turn] = []
    for index, channel in enumerate(channels):
        best = channel["alternatives"][0] if channel["alternatives"] else {}
        if not isinstance(best, dict):
            continue
        words = best.get("words") if isinstance(best.get("words"), list) else []
        channel_turns = _words_to_turns(
            words,
            lambda w: _s(w.get("punctuated_word")) or _s(w.get("word")),
            lambda w, index=index: label(w.get("speaker"), index),
        )
        if not channel_turns and clean_text(best.get("transcript")):
            channel_turns = [Turn("unknown", label(None, index), None, None, clean_text(best["transcript"]))]
        turns.extend(channel_turns)
    if multichannel:
        turns.sort(key=lambda t: (t.start is None, t.start or 0.0))
    return turns


def deepgram_language(doc: dict) -> str | None:
    try:
        return doc["results"]["channels"][0].get("detected_language") or None
    except (KeyError, IndexError, TypeError, AttributeError):
        return None


# --- AssemblyAI -------------------------------------------------------------------------------


def is_assemblyai(doc: Any) -> bool:
    # Times in milliseconds; "utterances" (null without speaker_labels) sets it apart from Whisper.
    return (
        isinstance(doc, dict)
        and "utterances" in doc
        and isinstance(doc.get("words"), (list, type(None)))
        and "text" in doc
        and "segments" not in doc
    )


def parse_assemblyai(doc: dict) -> list[Turn]:
    def label(speaker) -> str | None:
        return f"Speaker {speaker}" if isinstance(speaker, (str, int)) and speaker != "" else None

    utterances = doc.get("utterances")
    if isinstance(utterances, list) and utterances:
        turns = [
            Turn(
                "unknown", label(u.get("speaker")), _num(u.get("start")), _num(u.get("end")),
                clean_text(u.get("text")), sentiment_of(u.get("sentiment")),
            )
            for u in utterances
            if isinstance(u, dict) and clean_text(u.get("text"))
        ]
        return [_scaled(t, 0.001) for t in turns]
    words = doc.get("words") or []
    turns = _words_to_turns(words, lambda w: _s(w.get("text")), lambda w: label(w.get("speaker")), scale=0.001)
    if not turns and clean_text(doc.get("text")):
        turns = [Turn("unknown", None, None, None, clean_text(doc["text"]))]
    return turns


def assemblyai_language(doc: dict) -> str | None:
    value = doc.get("language_code")
    return value if isinstance(value, str) and value else None


# --- Whisper ----------------------------------------------------------------------------------


def is_whisper(doc: Any) -> bool:
    segments = doc.get("segments") if isinstance(doc, dict) else None
    return isinstance(segments, list) and all(isinstance(s, dict) and "text" in s for s in segments) and (
        bool(segments) or "text" in doc
    )


def parse_whisper(doc: dict) -> list[Turn]:
    turns = []
    for s in doc["segments"]:
        text = clean_text(s.get("text"))
        if not text:
            continue
        speaker = s.get("speaker")  # WhisperX, after diarization
        turns.append(Turn("unknown", str(speaker) if isinstance(speaker, (str, int)) else None,
                          _num(s.get("start")), _num(s.get("end")), text))
    if not turns and clean_text(doc.get("text")):
        turns = [Turn("unknown", None, None, None, clean_text(doc["text"]))]
    return turns


def whisper_language(doc: dict) -> str | None:
    value = doc.get("language")
    return value if isinstance(value, str) and value else None
