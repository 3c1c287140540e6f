"""Amazon's transcript JSON: Amazon Transcribe (batch, with speaker or channel labels), Transcribe
Call Analytics and Amazon Connect Contact Lens (turns with participant roles and sentiment), and
the Post-Call Analytics solution's output (speech segments with speaker labels and sentiment).
"""

from __future__ import annotations

from typing import Any

from channels.voice.transcript import Turn, clean_text, role_of_label, sentiment_of

# --- Amazon Transcribe (batch) ----------------------------------------------------------------


def is_transcribe(doc: Any) -> bool:
    results = doc.get("results") if isinstance(doc, dict) else None
    return isinstance(results, dict) and isinstance(results.get("transcripts"), list) and (
        isinstance(results.get("items"), list) or isinstance(results.get("audio_segments"), list)
    )


def _num(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _word(item: dict) -> str:
    alternatives = item.get("alternatives") or [{}]
    content = alternatives[0].get("content")
    return content if isinstance(content, str) else ""


def _join(words: list[tuple[str, str]]) -> str:
    """Words and punctuation ('pronunciation'/'punctuation' items) into text."""
    out: list[str] = []  # joined once at the end: one speaker may talk for an hour
    started = False
    for kind, content in words:
        if kind == "punctuation" or not started:
            out.append(content)
            started = started or bool(content)
        else:
            out.append(" " + content)
            started = True
    return clean_text("".join(out))


def _group(items: list[dict], speaker_of) -> list[Turn]:
    """Consecutive items of one speaker make a turn; punctuation belongs to the word before it."""
    turns: list[Turn] = []
    current: dict | None = None
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = item.get("type") or "pronunciation"
        speaker = speaker_of(item)
        if kind == "punctuation" and current is not None:
            speaker = current["speaker"]
        if current is None or speaker != current["speaker"]:
            if current is not None:
                turns.append(_turn(current))
            current = {"speaker": speaker, "start": _num(item.get("start_time")), "end": None, "words": []}
        current["words"].append((kind, _word(item)))
        end = _num(item.get("end_time"))
        if end is not None:
            current["end"] = end
        if current["start"] is None:
            current["start"] = _num(item.get("start_time"))
    if current is not None:
        turns.append(_turn(current))
    return [t for t in turns if t.text]


def _turn(current: dict) -> Turn:
    speaker = current["speaker"]
    return Turn(role="unknown", speaker=speaker, start=current["start"], end=current["end"], text=_join(current["words"]))


def parse_transcribe(doc: dict) -> list[Turn]:
    results = doc["results"]
    segments = results.get("audio_segments")
    if isinstance(segments, list) and segments and all(isinstance(s, dict) and "speaker_label" in s for s in segments):
        # Newer output: the turns are already there.
        return [
            Turn(role="unknown", speaker=str(s.get("speaker_label")), start=_num(s.get("start_time")),
                 end=_num(s.get("end_time")), text=clean_text(s.get("transcript")))
            for s in segments
            if clean_text(s.get("transcript"))
        ]
    channels = (results.get("channel_labels") or {}).get("channels") if isinstance(results.get("channel_labels"), dict) else None
    if isinstance(channels, list) and channels:
        # Channel identification (agent and customer on separate stereo channels): each channel's
        # items, merged by time.
        tagged = []
        for channel in channels:
            label = str(channel.get("channel_label") or "ch_?")
            for turn in _group(channel.get("items") or [], lambda item, label=label: label):
                tagged.append(turn)
        return sorted(tagged, key=lambda t: (t.start is None, t.start or 0.0))
    items = results.get("items") or []
    by_start: dict[Any, str] = {}
    labels = results.get("speaker_labels")
    if isinstance(labels, dict):
        # Older output has the speaker only in speaker_labels.segments, keyed by start time.
        for segment in labels.get("segments") or []:
            for item in (segment.get("items") or []) if isinstance(segment, dict) else []:
                if isinstance(item, dict) and "speaker_label" in item:
                    by_start[item.get("start_time")] = str(item["speaker_label"])
    turns = _group(items, lambda item: item.get("speaker_label") or by_start.get(item.get("start_time")))
    if not turns:
        text = " ".join(clean_text(t.get("transcript")) for t in results.get("transcripts") or [] if isinstance(t, dict))
        return [Turn("unknown", None, None, None, clean_text(text))] if clean_text(text) else []
    return turns


def transcribe_language(doc: dict) -> str | None:
    results = doc.get("results") or {}
    return results.get("language_code") or doc.get("language_code") or None


# --- Transcribe Call Analytics and Contact Lens -------------------------------------------------


def is_call_analytics(doc: Any) -> bool:
    turns = doc.get("Transcript") if isinstance(doc, dict) else None
    return (
        isinstance(turns, list)
        and bool(turns)
        and all(isinstance(t, dict) and "Content" in t and ("ParticipantRole" in t or "ParticipantId" in t) for t in turns)
    )


def parse_call_analytics(doc: dict) -> list[Turn]:
    """Call Analytics turns carry ParticipantRole; Contact Lens turns a ParticipantId that the
    Participants list maps to a role."""
    roles = {
        str(p.get("ParticipantId")): str(p.get("ParticipantRole"))
        for p in doc.get("Participants") or []
        if isinstance(p, dict) and p.get("ParticipantId") and p.get("ParticipantRole")
    }
    turns = []
    for t in doc["Transcript"]:
        text = clean_text(t.get("Content"))
        if not text:
            continue
        participant = t.get("ParticipantRole") or roles.get(str(t.get("ParticipantId"))) or t.get("ParticipantId")
        label = str(participant) if participant else None
        begin, end = _num(t.get("BeginOffsetMillis")), _num(t.get("EndOffsetMillis"))
        turns.append(
            Turn(
                role=role_of_label(label),
                speaker=label,
                start=begin / 1000 if begin is not None else None,
                end=end / 1000 if end is not None else None,
                text=text,
                sentiment=sentiment_of(t.get("Sentiment")),
            )
        )
    return turns


# --- Post-Call Analytics (aws-samples/amazon-transcribe-post-call-analytics) ---------------------


def is_pca(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("SpeechSegments"), list) and isinstance(
        doc.get("ConversationAnalytics"), dict
    )


def _pca_sentiment(segment: dict) -> str | None:
    # A segment PCA did not analyse (too short) has empty BaseSentimentScores: no sentiment.
    if not segment.get("BaseSentimentScores") and "BaseSentimentScores" in segment:
        return None
    if segment.get("SentimentIsPositive"):
        return "positive"
    if segment.get("SentimentIsNegative"):
        return "negative"
    if "SentimentIsPositive" in segment or "SentimentIsNegative" in segment:
        return "neutral"
    return None


def parse_pca(doc: dict) -> list[Turn]:
    analytics = doc["ConversationAnalytics"]
    names = {
        str(s.get("Speaker")): str(s.get("DisplayText"))
        for s in analytics.get("SpeakerLabels") or []
        if isinstance(s, dict) and s.get("Speaker") and s.get("DisplayText")
    }
    turns = []
    for segment in doc["SpeechSegments"]:
        if not isinstance(segment, dict):
            continue
        text = clean_text(segment.get("DisplayText")) or clean_text(segment.get("OriginalText"))
        if not text:
            continue
        raw_speaker = segment.get("SegmentSpeaker")
        label = names.get(str(raw_speaker), str(raw_speaker) if raw_speaker is not None else None)
        turns.append(
            Turn(
                role=role_of_label(label),
                speaker=label,
                start=_num(segment.get("SegmentStartTime")),
                end=_num(segment.get("SegmentEndTime")),
                text=text,
                sentiment=_pca_sentiment(segment),
            )
        )
    return turns


def pca_language(doc: dict) -> str | None:
    return (doc.get("ConversationAnalytics") or {}).get("LanguageCode") or None
