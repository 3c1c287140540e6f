"""Articles into passages: the unit the knowledge base indexes and suggests.

A short article is one passage. A long one is cut along its markdown headings, each piece keeping
the path of headings it sits under ("Returns > Damaged items"), so a suggestion can say where in
the article it comes from and the embedding of a piece still knows its topic. A section longer
than `max_chars` is packed from its paragraphs, a paragraph longer than that from its sentences.
The cut depends only on the text, so re-splitting an unchanged article gives the same passages and
an edit re-indexes only the passages it touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FORMATS = ("markdown", "text")

_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_BLANK_LINES = re.compile(r"\n[ \t]*\n+")
# A sentence ends at . ! ? (followed by a space) or at a CJK full stop, question or exclamation mark.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])")
HEADING_SEPARATOR = " > "


@dataclass(frozen=True)
class PassageText:
    heading: str  # heading path the passage sits under, e.g. "Returns > Damaged items"; "" if none
    text: str


def split_article(title: str, body: str, *, fmt: str = "markdown", max_chars: int = 1200) -> list[PassageText]:
    """Long articles split into passages that keep their heading (markdown headings; fmt="text" for
    plain text). Short articles give one passage. Deterministic (same input, same passages) so an
    edit re-indexes only what changed. An empty body gives no passage."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown article format {fmt!r}: use one of {', '.join(FORMATS)}")
    if max_chars < 80:
        raise ValueError("max_chars must be at least 80")
    body = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not body:
        return []
    if len(body) <= max_chars:
        return [PassageText("", body)]
    sections = _markdown_sections(body, title) if fmt == "markdown" else [("", body)]
    passages: list[PassageText] = []
    for heading, text in sections:
        for piece in _pack(text, max_chars):
            passages.append(PassageText(heading, piece))
    return passages


def _markdown_sections(body: str, title: str) -> list[tuple[str, str]]:
    """(heading path, text) for each stretch of text between headings. Headings inside fenced code
    are text; a first-level heading that repeats the title is not part of the path."""
    sections: list[tuple[str, str]] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False

    def flush() -> None:
        text = "\n".join(lines).strip()
        if text:
            sections.append((HEADING_SEPARATOR.join(name for _, name in path), text))
        lines.clear()

    def enter(level: int, name: str) -> None:
        flush()
        while path and path[-1][0] >= level:
            path.pop()
        if not (level == 1 and not path and name.strip().casefold() == title.strip().casefold()):
            path.append((level, name.strip()))

    for line in body.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            lines.append(line)
            continue
        if not in_fence:
            atx = _ATX_HEADING.match(line)
            if atx:
                enter(len(atx.group(1)), atx.group(2))
                continue
            setext = _SETEXT_UNDERLINE.match(line)
            # "Text\n====" is a heading; "---" under a blank line is a rule, not a heading.
            if setext and lines and lines[-1].strip():
                name = lines.pop()
                enter(1 if setext.group(1)[0] == "=" else 2, name)
                continue
        lines.append(line)
    flush()
    return sections


def _pack(text: str, max_chars: int) -> list[str]:
    """Greedy packing of paragraphs (then sentences, then words) into pieces of at most max_chars."""
    if len(text) <= max_chars:
        return [text]
    # (joiner to the previous unit, unit): sentences of one paragraph rejoin with a space.
    units: list[tuple[str, str]] = []
    for paragraph in _BLANK_LINES.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= max_chars:
            units.append(("\n\n", paragraph))
            continue
        joiner = "\n\n"
        for sentence in _SENTENCE_END.split(paragraph):
            sentence = sentence.strip()
            for piece in _hard_cut(sentence, max_chars) if sentence else ():
                units.append((joiner, piece))
                joiner = "" if piece[-1] in "。！？" else " "  # CJK text has no spaces between sentences
    pieces: list[str] = []
    current = ""
    for joiner, unit in units:
        candidate = f"{current}{joiner}{unit}" if current else unit
        if len(candidate) <= max_chars:
            current = candidate
        else:
            if current:
                pieces.append(current)
            current = unit
    if current:
        pieces.append(current)
    return pieces


def _hard_cut(sentence: str, max_chars: int) -> list[str]:
    """A sentence too long for one passage: cut at the last space before the limit (CJK text has
    no spaces: cut at the limit)."""
    pieces = []
    while len(sentence) > max_chars:
        cut = sentence.rfind(" ", max_chars // 2, max_chars)
        if cut <= 0:
            cut = max_chars
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    if sentence:
        pieces.append(sentence)
    return pieces


def snippet(text: str, matches, *, limit: int = 300) -> str:
    """A short extract of `text` (at most `limit` characters) around the sentence where
    `matches(sentence)` counts the most query terms; the start of the text when nothing matched."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    best = max(range(len(sentences)), key=lambda i: (matches(sentences[i]), -i)) if sentences else 0
    extract = ""
    for sentence in sentences[best:]:
        candidate = f"{extract} {sentence}".strip() if extract else sentence
        if len(candidate) > limit:
            break
        extract = candidate
    if not extract:  # one sentence longer than the limit: cut it at a word
        cut = text.find(sentences[best]) if sentences else 0
        extract = text[cut : cut + limit - 1]
        space = extract.rfind(" ")
        extract = (extract[:space] if space > limit // 2 else extract) + "…"
    elif len(extract) < len(text) and not text.endswith(extract):
        extract = extract.rstrip() + " …" if len(extract) + 2 <= limit else extract
    return extract


_LIST_MARKER = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")


def sentences(text: str) -> list[str]:
    """The lines and sentences of a passage, list markers dropped: the units the model reads."""
    out = []
    for line in text.split("\n"):
        line = _LIST_MARKER.sub("", line).strip()
        if line.startswith("#"):
            line = line.lstrip("#").strip()
        out.extend(s.strip() for s in _SENTENCE_END.split(line) if s.strip())
    return out
