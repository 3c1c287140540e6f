"""What the knowledge-base editor needs besides the store: an article's Markdown as safe HTML for
the preview, the editor's form read with the API's own rules, and how often each article was used
and found not helpful.

The preview is rendered on the server: markdown-it-py (CommonMark, linear-time parsing, a maintained
library) with raw HTML turned off, so `<script>` in an article is shown as text; its output then
goes through nh3 (the hub's sanitiser) with a short list of tags and link schemes, so neither a
`javascript:` link nor an attribute can carry script. Agents see exactly what will be published.
"""

from __future__ import annotations

from typing import Any

import nh3
from pydantic import ValidationError
from sqlalchemy import Engine, case, func, select

from hub.contract.errors import RejectedInput
from hub.contract.i18n import N_
from hub.kb import articles as kb
from hub.kb import schemas as ks
from hub.store.db import read_tx
from hub.store.models import KbFeedback, KbFeedbackVerdict

feedback_t = KbFeedback.__table__

_TAGS = {"p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
         "a", "table", "thead", "tbody", "tr", "th", "td", "s", "img"}
_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "th": {"align"}, "td": {"align"}, "ol": {"start"}}


def render_markdown(text: str, fmt: str = "markdown") -> str:
    """The article's body as sanitised HTML (plain text: escaped, paragraphs kept)."""
    from markdown_it import MarkdownIt

    if fmt == "text":
        from markupsafe import escape

        return "".join(f"<p>{escape(p).replace(chr(10), '<br>')}</p>" for p in text.split("\n\n") if p.strip())
    html = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough").render(text)
    return nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow", strip_comments=True)


def fields_from_form(form, *, creating: bool, published: bool | None) -> kb.ArticleFields:
    """The editor's fields checked by the API's rules (lengths, language tag, tags): one message
    naming what is wrong, never a 500."""
    tags = [t.strip() for t in str(form.get("tags") or "").split(",") if t.strip()]
    raw = {"title": str(form.get("title") or ""), "body": str(form.get("body") or ""),
           "format": str(form.get("format") or "markdown"), "language": str(form.get("language") or "en").strip(), "tags": tags}
    if published is not None:
        raw["published"] = published
    try:
        body = (ks.ArticleIn if creating else ks.ArticlePatch).model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'article'}: {e['msg']}" for e in exc.errors()[:5])
        # The problems are pydantic's words (English) about named fields: the sentence around them is translated.
        raise RejectedInput(N_("the article cannot be saved: %(problems)s"), params={"problems": problems}) from None
    return kb.ArticleFields(title=body.title, body=body.body, format=body.format, language=body.language,
                            tags=tuple(body.tags or ()), published=body.published)


def usage(engine: Engine, article_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per article: in how many conversations it was shown, used, and found not helpful."""
    if not article_ids:
        return {}
    counts = [func.sum(case((feedback_t.c.verdict == v, 1), else_=0)).label(v.value)
              for v in (KbFeedbackVerdict.shown, KbFeedbackVerdict.used, KbFeedbackVerdict.not_helpful)]
    stmt = select(feedback_t.c.article_id, *counts).where(feedback_t.c.article_id.in_(article_ids)).group_by(feedback_t.c.article_id)
    with read_tx(engine) as conn:
        rows = conn.execute(stmt).all()
    out: dict[int, dict[str, Any]] = {i: {"shown": 0, "used": 0, "not_helpful": 0} for i in article_ids}
    for r in rows:
        out[r.article_id] = {"shown": int(r.shown or 0), "used": int(r.used or 0), "not_helpful": int(r.not_helpful or 0)}
    return out
