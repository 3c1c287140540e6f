"""Which questions of a message the back end's facts answer, and which are left for a person.

"Is the blue kettle in stock, and how long does delivery to Lagos take?" asks two things; the stock
facts answer the first only. A message is cut into its questions (sentences that end in a question
mark or open with a question word, and the parts of one sentence joined by "and" before a new
question word); a question is covered when it names an order or product the facts are about, or
when it names none and reads as the same kind of question that was answered ("where is SO-4711,
and when will it arrive?"). A message with one question is covered by whatever answered it.

Plain functions, no I/O; linear in the text (bounded by MAX_SCAN and MAX_QUESTIONS).
"""

from __future__ import annotations

import re
from collections.abc import Callable

# How much of a message is read for questions, and how many are looked at: a message asking more
# is for a person anyway.
MAX_SCAN = 4000
MAX_QUESTIONS = 8

_QUESTION_WORDS = (
    r"how|what|when|where|which|who|whom|whose|why|is|are|was|were|can|could|do|does|did|will|would|should|shall|may|"
    r"have|has"
)
_SENTENCE = re.compile(r"[^.?!。？！\n]+[.?!。？！]*")
_AND_NEW_QUESTION = re.compile(rf"(?:,\s*|\s+)(?:and|also|plus|as well as)\s+(?=(?:{_QUESTION_WORDS})\b)", re.I)


def questions_in(text: str) -> list[str]:
    """The questions a message asks, in order, trimmed (at most MAX_QUESTIONS): its sentences that
    end in a question mark, cut where "and" opens a new question."""
    out: list[str] = []
    for sentence in _SENTENCE.finditer((text or "")[:MAX_SCAN]):
        if not sentence.group(0).rstrip().endswith(("?", "？")):
            continue  # a statement ("my order was due on Monday and has not arrived.")
        for part in _AND_NEW_QUESTION.split(sentence.group(0)):
            part = part.strip(" ,;:\t")
            if part:
                out.append(part)
                if len(out) >= MAX_QUESTIONS:
                    return out
    return out


def left_open(text: str, answered_intent: str, subjects: list[str], detect: Callable[[str], object]) -> list[str]:
    """The questions of `text` the answer does not cover. `subjects`: what the facts are about
    (order references, product names and SKUs as written); `detect`: the intent detector, read on
    each question alone (its .name, .orders, .products)."""
    asked = questions_in(text)
    if len(asked) < 2:
        return []
    known = [s.lower() for s in subjects if s]
    rest = []
    for question in asked:
        lowered = question.lower()
        if any(s in lowered for s in known):
            continue
        intent = detect(question)
        names_other = bool(getattr(intent, "orders", ())) or bool(getattr(intent, "products", ()))
        if getattr(intent, "name", None) == answered_intent and not names_other:
            continue
        rest.append(question)
    return rest
