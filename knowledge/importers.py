"""Knowledge-base articles from files: Markdown, HTML, and FAQ tables (CSV, JSON, JSON Lines).

`read_file(path)` turns one file into article drafts and the problems it found (each naming the
file and, where there is one, the line); an unreadable file or row never stops the others.
`find_files(path)` lists what a folder holds, recursively. Nothing here touches the store: the
hub decides what a draft becomes (created, updated, unchanged) by its `source_key`, which is
stable across imports of the same file: the file's absolute path, plus `#question` for FAQ rows.

HTML is turned into Markdown text here (headings, paragraphs, lists, links, tables as lines), so
no markup from an imported page is ever stored or shown.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKDOWN_SUFFIXES = (".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
FAQ_SUFFIXES = (".csv", ".json", ".jsonl", ".ndjson")
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES + HTML_SUFFIXES + FAQ_SUFFIXES

MAX_TITLE = 300
MAX_BODY = 1_000_000
MAX_KEY = 500
MAX_TAGS = 50
MAX_TAG = 64
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")
# FAQ columns/keys, lower case, and the other names people give them.
_QUESTION = ("question", "title", "q")
_ANSWER = ("answer", "body", "a", "text")


@dataclass(frozen=True)
class ArticleDraft:
    """An article as read from a file, before the store has seen it."""

    title: str
    body: str
    format: str = "markdown"  # markdown | text
    language: str = "en"
    tags: tuple[str, ...] = ()
    source_key: str = ""
    location: str = ""  # "path:line", for messages
    published: bool | None = None  # when the file says so (front matter); None: the importer's default


@dataclass(frozen=True)
class ImportProblem:
    """Why a file, or one row or item of it, was not imported."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


@dataclass
class FileResult:
    drafts: list[ArticleDraft] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)


class _Problem(Exception):
    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


# --- what to read ---------------------------------------------------------------------------


def find_files(path: Path | str) -> list[Path]:
    """The supported files under `path` (recursively, hidden ones skipped, in a stable order), or
    `path` itself when it is a file (whatever its suffix: read_file says if it cannot read it)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    found = []
    for candidate in sorted(path.rglob("*")):
        relative = candidate.relative_to(path).parts
        if any(part.startswith(".") for part in relative):
            continue
        if candidate.is_file() and candidate.suffix.lower() in SUPPORTED_SUFFIXES:
            found.append(candidate)
    return found


def read_path(path: Path | str, *, language: str = "en") -> FileResult:
    """Every supported file under `path`, read into one result."""
    result = FileResult()
    for file in find_files(path):
        one = read_file(file, language=language)
        result.drafts.extend(one.drafts)
        result.problems.extend(one.problems)
    return result


def read_file(path: Path | str, *, language: str = "en") -> FileResult:
    """Drafts and problems of one file; never raises for bad content."""
    path = Path(path)
    shown = str(path)
    result = FileResult()
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        result.problems.append(
            ImportProblem(shown, None, f"unsupported file type {suffix or '(none)'}; use {', '.join(SUPPORTED_SUFFIXES)}")
        )
        return result
    try:
        raw = path.read_bytes()
    except OSError as exc:
        result.problems.append(ImportProblem(shown, None, f"cannot read the file: {exc.strerror or exc}"))
        return result
    source = path.resolve().as_posix()
    try:
        if suffix in HTML_SUFFIXES:
            result.drafts.append(_html_article(raw, source, shown, language))
        else:
            text = _decode(raw)
            if suffix in MARKDOWN_SUFFIXES:
                result.drafts.append(_markdown_article(text, path, source, shown, language))
            elif suffix == ".csv":
                _faq_rows(_csv_items(text), source, shown, language, result)
            else:
                _faq_rows(_json_items(text, jsonl=suffix != ".json"), source, shown, language, result)
    except _Problem as problem:
        result.problems.append(ImportProblem(shown, problem.line, problem.message))
    return result


def _decode(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise _Problem(f"not UTF-8 text (byte {exc.start}); save the file as UTF-8", line) from None
    if "\x00" in text:
        raise _Problem("the file contains NUL bytes: it is not a text file", text[: text.index("\x00")].count("\n") + 1)
    return text


# --- Markdown ------------------------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|\Z)", re.DOTALL)
_H1 = re.compile(r"^#[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)


def _markdown_article(text: str, path: Path, source: str, shown: str, language: str) -> ArticleDraft:
    meta: dict[str, Any] = {}
    body = text
    match = _FRONT_MATTER.match(text)
    if match:
        meta = _front_matter(match.group(1))
        body = text[match.end():]
    title = str(meta.get("title") or "").strip()
    if not title:
        heading = _H1.search(body)
        if heading and not body[: heading.start()].strip():
            # The leading "# Title" is the title; the body starts after it.
            title = heading.group(1).strip()
            body = body[heading.end():]
        else:
            title = path.stem.replace("_", " ").replace("-", " ").strip().capitalize()
    published = meta.get("published")
    if "draft" in meta and published is None:
        published = not bool(meta["draft"])
    return _draft(
        title=title,
        body=body,
        fmt="markdown",
        language=meta.get("language") or meta.get("lang") or language,
        tags=meta.get("tags"),
        source_key=source,
        location=shown,
        published=bool(published) if published is not None else None,
    )


def _front_matter(block: str) -> dict[str, Any]:
    import yaml  # pyyaml (pyproject); front matter is YAML

    try:
        meta = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise _Problem(f"the front matter is not valid YAML: {getattr(exc, 'problem', exc)}",
                       mark.line + 2 if mark else 1) from None
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise _Problem("the front matter must be 'key: value' lines", 2)
    return {str(k).lower(): v for k, v in meta.items()}


# --- HTML ----------------------------------------------------------------------------------

_DROP = {"script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "canvas", "form",
         "nav", "header", "footer", "aside", "button", "select", "input", "textarea", "head"}
_BLOCKS = {"p", "div", "section", "article", "main", "figure", "figcaption", "address", "details", "summary",
           "dl", "dt", "dd", "tr", "table", "thead", "tbody", "tfoot", "caption", "center"}


def _html_article(raw: bytes, source: str, shown: str, language: str) -> ArticleDraft:
    import lxml.html
    from lxml import etree

    if not raw.strip():
        raise _Problem("the file is empty")
    try:
        doc = lxml.html.document_fromstring(raw)
    except (etree.ParserError, ValueError) as exc:
        raise _Problem(f"not readable as HTML: {exc}") from None
    title = ""
    title_el = doc.find(".//title")
    if title_el is not None:
        title = _squash(title_el.text_content())
    h1 = doc.find(".//h1")
    if not title and h1 is not None:
        title = _squash(h1.text_content())
    # lxml elements are falsy when they have no children: test for None, never with `or`.
    root = next((el for el in (doc.find(".//main"), doc.find(".//article"), doc.find(".//body")) if el is not None), doc)
    if h1 is not None and _squash(h1.text_content()) == title and _is_inside(h1, root):
        h1.drop_tree()  # the title, already in the title field
    lang = (doc.get("lang") or "").split("_")[0] or language
    body = _html_to_markdown(root)
    return _draft(title=title, body=body, fmt="markdown", language=lang, tags=None, source_key=source,
                  location=shown, published=None)


def _is_inside(element, root) -> bool:
    return any(ancestor is root for ancestor in element.iterancestors()) or element is root


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def _html_to_markdown(root) -> str:
    """Block structure as Markdown: the passage splitter finds the sections by their headings."""
    out: list[str] = []

    def inline(el) -> str:
        parts = [el.text or ""]
        for child in el:
            if not isinstance(child.tag, str):  # comments, processing instructions
                parts.append(child.tail or "")
                continue
            tag = child.tag.lower()
            if tag in _DROP:
                pass
            elif tag == "br":
                parts.append("\n")
            elif tag == "a" and child.get("href", "").startswith(("http://", "https://", "mailto:")):
                label = _squash(inline(child))
                parts.append(f"[{label}]({child.get('href')})" if label else "")
            elif tag in ("strong", "b"):
                label = _squash(inline(child))
                parts.append(f"**{label}**" if label else "")
            elif tag in ("em", "i"):
                label = _squash(inline(child))
                parts.append(f"*{label}*" if label else "")
            elif tag == "code":
                parts.append(f"`{_squash(child.text_content())}`")
            else:
                parts.append(inline(child))
            parts.append(child.tail or "")
        return "".join(parts)

    def block(el) -> None:
        tag = el.tag.lower() if isinstance(el.tag, str) else ""
        if tag in _DROP or not tag:
            return
        if re.fullmatch(r"h[1-6]", tag):
            text = _squash(el.text_content())
            if text:
                out.append("#" * int(tag[1]) + " " + text)
            return
        if tag in ("ul", "ol"):
            items = [_squash(inline(item)) for item in el.findall("li")]
            lines = [(f"{n}. " if tag == "ol" else "- ") + text for n, text in enumerate(filter(None, items), 1)]
            if lines:
                out.append("\n".join(lines))
            return
        if tag == "pre":
            out.append("```\n" + (el.text_content() or "").strip("\n") + "\n```")
            return
        if tag == "blockquote":
            text = _squash(inline(el))
            if text:
                out.append("> " + text)
            return
        if tag in ("table", "tr"):
            rows = [el] if tag == "tr" else list(el.iter("tr"))
            lines = []
            for row in rows:
                cells = [_squash(c.text_content()) for c in row if isinstance(c.tag, str) and c.tag.lower() in ("td", "th")]
                if any(cells):
                    lines.append(" | ".join(cells))
            if lines:
                out.append("\n".join(lines))
            return
        # A container: its own loose text is a paragraph; its block children come in order.
        has_blocks = any(isinstance(c.tag, str) and (c.tag.lower() in _BLOCKS or c.tag.lower() in ("ul", "ol", "pre", "blockquote")
                         or re.fullmatch(r"h[1-6]", c.tag.lower())) for c in el)
        if not has_blocks:
            text = re.sub(r"[ \t]+", " ", inline(el)).strip()
            text = re.sub(r" *\n *", "\n", text)
            if text:
                out.append(text)
            return
        loose = [el.text or ""]
        for child in el:
            child_tag = child.tag.lower() if isinstance(child.tag, str) else ""
            if child_tag in _BLOCKS or child_tag in ("ul", "ol", "pre", "blockquote") or re.fullmatch(r"h[1-6]", child_tag):
                if _squash("".join(loose)):
                    out.append(_squash("".join(loose)))
                loose = []
                block(child)
            elif child_tag and child_tag not in _DROP:
                loose.append(_squash(inline(child)) + " ")
            loose.append(child.tail or "")
        if _squash("".join(loose)):
            out.append(_squash("".join(loose)))

    block(root)
    return "\n\n".join(out)


# --- FAQ tables ----------------------------------------------------------------------------


def _csv_items(text: str) -> Iterable[tuple[int, dict[str, Any] | _Problem]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise _Problem("the file is empty") from None
    except csv.Error as exc:
        raise _Problem(f"not readable as CSV: {exc}", reader.line_num) from None
    names = [h.strip().lower() for h in header]
    if not any(n in _QUESTION for n in names) or not any(n in _ANSWER for n in names):
        raise _Problem(f"the header needs a 'question' and an 'answer' column; it has: {', '.join(header)}", 1)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader cannot go on past a broken quote or an oversized field: stop this file.
            yield reader.line_num, _Problem(f"not readable as CSV: {exc}")
            return
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(names):
            yield reader.line_num, _Problem(f"{len(row)} fields but the header has {len(names)} (a comma in an unquoted field?)")
            continue
        yield reader.line_num, dict(zip(names, row))


def _json_items(text: str, *, jsonl: bool) -> Iterable[tuple[int | None, dict[str, Any] | _Problem]]:
    if not text.strip():
        raise _Problem("the file is empty")
    if not jsonl:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg != "Extra data":
                raise _Problem(f"not valid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
            jsonl = True  # one object per line, in a file named .json
        else:
            if isinstance(data, dict):
                lists = [v for k, v in data.items() if isinstance(v, list) and k.lower() in ("articles", "faq", "faqs", "items", "data", "questions")]
                if len(lists) != 1:
                    raise _Problem("expected a list of {question, answer} objects (or JSON Lines)", 1)
                data = lists[0]
            if not isinstance(data, list):
                raise _Problem("expected a list of {question, answer} objects (or JSON Lines)", 1)
            for item in data:
                yield None, item if isinstance(item, dict) else _Problem("not a JSON object")
            return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, _Problem(f"not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        yield number, item if isinstance(item, dict) else _Problem("the line is not a JSON object")


def _faq_rows(items, source: str, shown: str, language: str, result: FileResult) -> None:
    seen: dict[str, str] = {}
    for n, (line, item) in enumerate(items, 1):
        where = f"{shown}:{line}" if line else f"{shown} item {n}"
        if isinstance(item, _Problem):
            result.problems.append(ImportProblem(shown, line, item.message if line else f"item {n}: {item.message}"))
            continue
        try:
            keys = {str(k).strip().lower(): v for k, v in item.items()}
            question = _text_field(keys, _QUESTION)
            answer = _text_field(keys, _ANSWER)
            if not question:
                raise _Problem("no question")
            if not answer:
                raise _Problem("no answer")
            if question in seen:
                raise _Problem(f"the same question again (first at {seen[question]}); skipped")
            draft = _draft(
                title=question,
                body=answer,
                fmt="text",
                language=keys.get("language") or keys.get("lang") or language,
                tags=keys.get("tags"),
                source_key=f"{source}#{question}",
                location=where,
                published=None,
            )
        except _Problem as problem:
            prefix = "" if line else f"item {n}: "
            result.problems.append(ImportProblem(shown, line, prefix + problem.message))
            continue
        seen[question] = where
        result.drafts.append(draft)


def _text_field(keys: dict[str, Any], names: tuple[str, ...]) -> str:
    for name in names:
        value = keys.get(name)
        if value is None:
            continue
        if not isinstance(value, (str, int, float)):
            raise _Problem(f"'{name}' must be text")
        value = str(value).strip()
        if value:
            return value
    return ""


# --- shared checks -------------------------------------------------------------------------


def _draft(*, title, body, fmt, language, tags, source_key, location, published) -> ArticleDraft:
    title = _squash(str(title))
    if not title:
        raise _Problem("no title")
    if len(title) > MAX_TITLE:
        title = title[: MAX_TITLE - 1].rstrip() + "…"
    body = str(body).replace("\r\n", "\n").strip()
    if not body:
        raise _Problem("no text")
    if len(body) > MAX_BODY:
        raise _Problem(f"the text is longer than {MAX_BODY:,} characters; split it into several articles")
    language = str(language).strip()
    if not _LANGUAGE.match(language):
        raise _Problem(f"language {language!r} is not a language tag like 'en' or 'zh-CN'")
    return ArticleDraft(
        title=title,
        body=body,
        format=fmt,
        language=language.lower() if "-" not in language else language,
        tags=_tags(tags),
        source_key=source_key if len(source_key) <= MAX_KEY else "sha256:" + hashlib.sha256(source_key.encode()).hexdigest(),
        location=location,
        published=published,
    )


def _tags(value) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        items = re.split(r"[,;|]", value)
    elif isinstance(value, (list, tuple)):
        items = [str(v) for v in value if v is not None]
    else:
        raise _Problem("tags must be a list or a comma-separated text")
    tags: list[str] = []
    for item in items:
        tag = _squash(item)[:MAX_TAG]
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise _Problem(f"more than {MAX_TAGS} tags")
    return tuple(tags)
