"""Plain-text transcripts: one turn per line that starts with a speaker label.

    [00:03] Agent: Thank you for calling, how can I help?
    Customer: My parcel hasn't arrived.
      (a line without a label continues the turn before it)

The time in front is optional ([mm:ss], [h:mm:ss], (mm:ss) or bare mm:ss); so the hub reads back
the dialogue it renders itself. The labels Agent and Customer (and Rep, Operator, Client...) give
roles; any other label (a name, SPEAKER_00) is kept as the speaker with the role unknown.
"""

from __future__ import annotations

import re

from channels.voice.transcript import Turn, clean_text, role_of_label

_TIME = r"(?:(\d{1,3}):)?(\d{1,2}):(\d{2})(?:[.,](\d{1,3}))?"
_LINE = re.compile(
    rf"^\s*(?:[\[(]?{_TIME}[\])]?\s*(?:[-–—]\s*)?)?"
    r"(\[?[^\W\d_][\w .'’()\-#]{0,39}?\]?)\s*:\s+(\S.*)$"
)
MAX_LABEL_WORDS = 4
_NAMED_ROLE = re.compile(r"^\w+\s*\((.+)\)$")


def seconds(hours: str | None, minutes: str, secs: str, fraction: str | None) -> float:
    value = int(hours or 0) * 3600 + int(minutes) * 60 + int(secs)
    return value + (int(fraction.ljust(3, "0")) / 1000 if fraction else 0.0)


def split_speaker(line: str) -> tuple[str | None, float | None, str]:
    """'[00:03] Agent: hello' -> ('Agent', 3.0, 'hello'); a line without a label -> (None, None, line)."""
    match = _LINE.match(line) if ":" in line else None  # most lines of a long turn have no label
    if not match:
        return None, None, line
    hours, minutes, secs, fraction, label, text = match.groups()
    label = label.strip().strip("[]").strip()
    if not label or len(label.split()) > MAX_LABEL_WORDS:
        return None, None, line
    start = seconds(hours, minutes, secs, fraction) if minutes is not None else None
    return label, start, text


def looks_like(text: str) -> bool:
    """A plain transcript starts with a labelled line (prose does not)."""
    for line in text.splitlines():
        if line.strip():
            return split_speaker(line)[0] is not None
    return False


def parse_text(text: str) -> list[Turn]:
    turns: list[dict] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        label, start, said = split_speaker(line)
        if label is None:
            if turns:
                turns[-1]["text"].append(line.strip())  # joined once at the end: a turn may run on for pages
            continue
        turns.append({"speaker": label, "start": start, "text": [said]})
    out = []
    for t in turns:
        said = clean_text(" ".join(t["text"]))
        if not said:
            continue
        role, speaker = role_of_label(t["speaker"]), t["speaker"]
        named = _NAMED_ROLE.match(speaker)
        if role != "unknown" and named:
            speaker = named.group(1).strip()  # 'Agent (Yuri Bakulin)', as the hub renders it
        out.append(Turn(role=role, speaker=speaker, start=t["start"], end=None, text=said))
    return out
