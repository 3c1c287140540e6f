"""HTML mail -> readable plain text: paragraphs, line breaks, list items, link text; no scripts,
styles or hidden preheaders. Quoted history (<blockquote>) comes out as "> " lines, so the same
quote stripper handles HTML-only and plain-text mail.

lxml (libxml2) parses: it is fast and recovers from any tag soup mail clients produce. The text is
built by walking the tree, not by a Markdown converter: html2text escapes and decorates text for
Markdown, inscriptis lays out layout tables as wide grids of spaces; neither reads well in an inbox.
"""

from __future__ import annotations

import re

from lxml import etree

_SKIP = frozenset(
    {"script", "style", "head", "title", "meta", "link", "noscript", "template", "svg", "math", "object",
     "embed", "iframe", "frame", "frameset", "applet", "select", "option", "button", "input", "textarea",
     "map", "area", "audio", "video", "canvas", "xml", "o:p"}
)
# Elements that end a paragraph (a blank line) or at least a line.
_PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table", "pre", "address", "figure", "blockquote", "center"})
_LINE = frozenset(
    {"div", "li", "dt", "dd", "tr", "section", "article", "header", "footer", "nav", "aside", "main", "form",
     "fieldset", "legend", "caption", "hr", "tbody", "thead", "tfoot", "figcaption", "details", "summary", "body", "html"}
)
_CELL = frozenset({"td", "th"})
_WS = re.compile(r"[ \t\n\r\f\v\u00a0]+")
# Invisible padding (zero-width space, BOM, soft hyphen...) goes; ZWJ and ZWNJ stay: they join
# emoji and are part of the spelling of Persian and Indic words.
_INVISIBLE = re.compile("[\u200b\u2060\ufeff\u034f\u00ad]")
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)
_BLANKS = re.compile(r"\n{3,}")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_SPACE_AT_LINE_END = re.compile(r" ?\n ?")  # after _SPACES: a run is one space at most
# Past this many elements (and one per this many characters), a document is read as flat text.
_MAX_ELEMENTS = 20_000
_CHARS_PER_ELEMENT = 32
# A tag for the fallback: it runs to the next ">" but not over another "<", so a run of "<" without
# ">" is not rescanned from each of them.
_TAG = re.compile(r"<[^<>]*+>")


class _Writer:
    """Accumulates lines; block boundaries become at most one blank line, <br> always breaks;
    every line starts with as many "> " as blockquotes enclose it."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.cur: list[str] = []
        self.cur_depth = 0
        self.last_depth = 0
        self.pending = 0  # newlines owed before the next text: 1 = new line, 2 = blank line
        self.depth = 0
        self.pre = 0
        self.bullet = ""  # "- " or "3. ": written before the next text of a list item

    def _end_line(self, depth: int | None = None) -> None:
        depth = self.cur_depth if depth is None else depth
        text = "".join(self.cur).rstrip()
        self.lines.append(("> " * depth + text).rstrip())
        self.last_depth = depth
        self.cur = []

    def _flush_pending(self) -> None:
        if not self.pending:
            return
        if self.cur:
            self._end_line()
        if self.pending >= 2 and self.lines and self.lines[-1].strip("> "):
            self._end_line(min(self.last_depth, self.depth))
        self.pending = 0

    def text(self, value: str) -> None:
        if not value:
            return
        if not self.pre:
            value = _WS.sub(" ", _INVISIBLE.sub("", value))
            if value == " ":
                if self.cur and not self.pending and not self.cur[-1].endswith(" "):
                    self.cur.append(" ")
                return
        self._flush_pending()
        if not self.cur:
            self.cur_depth = self.depth
            if not self.pre:
                value = value.lstrip(" ")
        if self.bullet:
            value, self.bullet = self.bullet + value.lstrip(" "), ""
        elif not self.pre and value.startswith(" ") and self.cur[-1].endswith(" "):
            value = value[1:]
        if self.pre and "\n" in value:
            first, *rest = value.replace("\r\n", "\n").split("\n")
            self.cur.append(first)
            for piece in rest:
                self._end_line()
                self.cur_depth = self.depth
                self.cur.append(piece)
            return
        self.cur.append(value)

    def block(self, n: int) -> None:
        if self.cur or self.lines:
            self.pending = max(self.pending, n)

    def br(self) -> None:
        self._flush_pending()
        if not self.cur:
            self.cur_depth = self.depth
        self._end_line()

    def cell(self) -> None:
        if self.cur and not self.pending and not self.cur[-1].endswith(" "):
            self.cur.append("  ")

    def result(self) -> str:
        if self.cur:
            self._end_line()
        text = "\n".join(self.lines)
        return _BLANKS.sub("\n\n", text).strip("\n")


def _parse(html: str):
    html = _XML_DECL.sub("", html)
    if not html.strip():
        return None
    try:
        parser = etree.HTMLParser(remove_comments=True, remove_pis=True, no_network=True, recover=True)
        root = etree.fromstring(html, parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None
    # libxml2 stops reading at a resource limit (elements nested over 256 deep) and drops the rest
    # of the document: the flat text of the fallback then keeps every word.
    if any(error.type_name == "ERR_RESOURCE_LIMIT" for error in parser.error_log):
        return None
    return root


def html_to_text(html: str) -> str:
    """Readable text of an HTML body. Never raises: unparseable HTML gives its text with tags
    removed."""
    if not html:
        return ""
    root = _parse(html)
    if root is None:
        return _WS.sub(" ", _TAG.sub(" ", html)).strip()
    if root.xpath("count(//*)") > _MAX_ELEMENTS + len(html) // _CHARS_PER_ELEMENT:
        return _flat_text(root)
    out = _Writer()
    ol_counters: list[int] = []
    walker = etree.iterwalk(root, events=("start", "end"))
    skipped = None  # the element whose subtree was skipped: its "end" comes next
    for event, el in walker:
        tag = _tag_name(el.tag)
        if event == "start":
            if not tag or tag in _SKIP or _is_hidden(el):
                skipped = el
                walker.skip_subtree()
                continue
            if tag == "br":
                out.br()
            elif tag in _PARAGRAPH:
                out.block(2)
            elif tag in _LINE:
                out.block(1)
            elif tag in _CELL:
                out.cell()
            if tag == "blockquote":
                out.depth += 1
            elif tag == "pre":
                out.pre += 1
            elif tag == "ol":
                ol_counters.append(0)
            elif tag == "li":
                parent = el.getparent()
                if parent is not None and isinstance(parent.tag, str) and parent.tag.lower() == "ol" and ol_counters:
                    ol_counters[-1] += 1
                    out.bullet = f"{ol_counters[-1]}. "
                else:
                    out.bullet = "- "
            elif tag == "img":
                alt = (el.get("alt") or "").strip()
                if alt and not el.get("src", "").startswith("cid:") and len(alt) < 100:
                    out.text(f"[{alt}]")
            if el.text:
                out.text(el.text)
        else:
            if el is skipped:
                skipped = None
            else:
                if tag == "blockquote":
                    out.block(2)
                    out.depth = max(0, out.depth - 1)
                elif tag == "pre":
                    out.pre = max(0, out.pre - 1)
                elif tag == "ol" and ol_counters:
                    ol_counters.pop()
                if tag in _PARAGRAPH:
                    out.block(2)
                elif tag in _LINE:
                    out.block(1)
            if el.tail and el.getparent() is not None:
                out.text(el.tail)
    return out.result()


def _flat_text(root) -> str:
    """The text of a document with far more elements than mail has, in one pass of libxslt: blocks
    become line breaks, scripts, styles and hidden parts are left out, lists and quotes are not laid
    out. Walking the elements in Python costs a microsecond an element, and "<p>" is three bytes."""
    text = str(_FLAT_TEXT(root))
    text = _SPACES.sub(" ", _INVISIBLE.sub("", text))
    return _BLANKS.sub("\n\n", _SPACE_AT_LINE_END.sub("\n", text)).strip()


_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_FLAT_TEXT = etree.XSLT(
    etree.XML(
        f"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text" encoding="utf-8"/>
  <xsl:template match="{'|'.join(sorted(t for t in _SKIP if ':' not in t))}|*[@hidden]"/>
  <xsl:template match="*[@style][contains(translate(@style, '{_UPPER} &#9;&#10;&#13;', '{_UPPER.lower()}'), 'display:none')
                         or contains(translate(@style, '{_UPPER} &#9;&#10;&#13;', '{_UPPER.lower()}'), 'visibility:hidden')]"/>
  <xsl:template match="{'|'.join(sorted(_PARAGRAPH | _LINE | _CELL | {'br'}))}">
    <xsl:text>&#10;</xsl:text><xsl:apply-templates/><xsl:text>&#10;</xsl:text>
  </xsl:template>
</xsl:stylesheet>"""
    ),
    access_control=etree.XSLTAccessControl.DENY_ALL,
)


# Element tag -> lower-case name without namespace; the same few tags repeat thousands of times.
_TAG_NAMES: dict = {}


def _tag_name(tag) -> str:
    name = _TAG_NAMES.get(tag)
    if name is None:
        name = tag.lower().rsplit("}", 1)[-1] if isinstance(tag, str) and tag else ""
        if len(_TAG_NAMES) < 4096:
            _TAG_NAMES[tag] = name
    return name


def _is_hidden(el) -> bool:
    style = el.get("style")
    if style and _HIDDEN_STYLE.search(style):
        return True
    return el.get("hidden") is not None
