"""A call's transcript as the hub keeps it: turns with a speaker role, and the rules that give
roles to speakers a transcription service only numbered.

Role rule for diarized transcripts without roles (spk_0/spk_1, Speaker A/B, Teams names): a role
the transcript states wins (Call Analytics/Contact Lens participant roles, PCA speaker labels,
"Agent:"/"Customer:" lines, a <v Agent> voice). Otherwise a speaker whose first turns greet like an
agent ("thank you for calling", "how can I help") is the agent, and in a two-speaker call the other
one is the customer. Otherwise every role stays "unknown": position is no evidence (Amazon's own
diarization sample opens with the customer's "I've been on hold for an hour", and in the PCA sample
the speaker labelled Customer is the one who says "Thank you for calling"), and a wrong guess would
put the agent's words in the customer's mouth.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace

from hub.contract.errors import RejectedInput

ROLES = ("customer", "agent", "unknown")
SENTIMENTS = ("positive", "negative", "neutral", "mixed")


class UnknownTranscriptFormat(RejectedInput):
    """No supported transcript format recognised; the message names the supported ones."""

    code = "unknown_transcript_format"


class MalformedTranscript(RejectedInput):
    """The transcript is in a recognised (or named) format but broken."""

    code = "malformed_transcript"


@dataclass(frozen=True)
class Turn:
    """One stretch of speech. start/end: seconds from the start of the recording (None when the
    transcript has no times); speaker: the transcript's own label (a name, spk_0, Speaker A)."""

    role: str
    speaker: str | None
    start: float | None
    end: float | None
    text: str
    sentiment: str | None = None

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Transcript:
    """What parse_transcript() found: the format's name, the turns, where the roles came from
    ("transcript", "greeting" or "unknown") and the language the transcript states, if any."""

    format: str
    turns: list[Turn] = field(default_factory=list)
    roles: str = "unknown"
    language: str | None = None


# --- roles ------------------------------------------------------------------------------------

_ROLE_WORDS = {
    "agent": "agent",
    "rep": "agent",
    "representative": "agent",
    "operator": "agent",
    "advisor": "agent",
    "adviser": "agent",
    "support": "agent",
    "customer": "customer",
    "client": "customer",
}
_ROLE_LABEL = re.compile(r"^\W*([a-z]+)\b", re.I)


def role_of_label(label: str | None) -> str:
    """'Agent', 'AGENT', 'Agent Smith', 'customer (Ana)' -> a role; anything else 'unknown'."""
    if not label:
        return "unknown"
    # The role word leads the label; one long label shared by thousands of turns is read that often.
    match = _ROLE_LABEL.match(label, 0, 64)
    return _ROLE_WORDS.get(match.group(1).lower(), "unknown") if match else "unknown"


def sentiment_of(value) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    return value if value in SENTIMENTS else None


_AGENT_GREETING = re.compile(
    r"\b(thanks?( you)? for (calling|holding|your call)|how (can|may|might) i (help|assist)|"
    r"what can i do for you|you('ve| have) reached|welcome to)\b",
    re.I,
)


def assign_roles(turns: list[Turn]) -> tuple[list[Turn], str]:
    """Fill in roles by the module's rule; returns the turns and where the roles came from."""
    if any(t.role != "unknown" for t in turns):
        return turns, "transcript"
    speakers: list[str] = []
    first_turns: dict[str, list[str]] = {}
    for t in turns:
        if t.speaker is None:
            continue
        if t.speaker not in first_turns:
            speakers.append(t.speaker)
            first_turns[t.speaker] = []
        if len(first_turns[t.speaker]) < 2:
            first_turns[t.speaker].append(t.text)
    greeters = [s for s in speakers if any(_AGENT_GREETING.search(text) for text in first_turns[s])]
    if len(speakers) < 2 or len(greeters) != 1:
        return turns, "unknown"
    agent = greeters[0]
    roles = {agent: "agent"}
    if len(speakers) == 2:
        roles[next(s for s in speakers if s != agent)] = "customer"
    return [replace(t, role=roles.get(t.speaker, "unknown")) for t in turns], "greeting"


# --- the message text -------------------------------------------------------------------------

_GENERIC_LABEL = re.compile(r"^(spk_?\d+|speaker[ _]?\w{1,3}|ch(annel)?[ _]?\d+|[A-Z])$", re.I)


def clock(seconds: float) -> str:
    """3.4 -> '00:03'; 3725 -> '1:02:05'."""
    total = int(max(0.0, seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def who(turn: Turn) -> str:
    """'Customer', 'Agent (Yuri Bakulin)', 'Speaker 2', 'Unknown'."""
    if turn.role != "unknown":
        name = turn.role.capitalize()
        label = (turn.speaker or "").strip()
        if label and role_of_label(label) == "unknown" and not _GENERIC_LABEL.match(label):
            return f"{name} ({label})"
        return name
    return (turn.speaker or "").strip() or "Unknown"


def render(turns: Iterable[Turn]) -> str:
    """The dialogue as the inbox shows it: '[00:03] Customer: ...' per turn."""
    lines = []
    for t in turns:
        prefix = f"[{clock(t.start)}] " if t.start is not None else ""
        lines.append(f"{prefix}{who(t)}: {t.text}")
    return "\n".join(lines)


def customer_text(turns: list[Turn]) -> tuple[str, str]:
    """What the customer said, for intent detection and answer suggestions, and from what:
    ("customer turns", or "all turns" when no speaker could be told apart)."""
    said = [t.text for t in turns if t.role == "customer"]
    if said:
        return "\n".join(said), "customer turns"
    if all(t.role == "unknown" for t in turns):
        return "\n".join(t.text for t in turns), "all turns"
    return "", "customer turns"


def clean_text(text) -> str:
    """Whitespace collapsed; a value that is not text (a broken document's field) is no text. No
    NUL (PostgreSQL refuses it) and no lone surrogates (not encodable as UTF-8)."""
    if not isinstance(text, str):
        return ""
    text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return re.sub(r"\s+", " ", text).strip()
