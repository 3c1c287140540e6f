"""Knowledge-base articles in the store, and their passages.

Every write of an article re-derives its passages (kb_chunk) in the same transaction. A passage's
id is the article id plus a hash of what the index embeds (title, heading path, text, language):
an edit keeps the rows, and the stored vectors, of the passages it did not touch, and the index
(hub/kb/index.py) re-embeds only the new ids. The store is written first; the index follows and
catches up by comparing ids, so a failed index update never loses an article.

Who may write: admins everything; agents read, and write drafts (unpublished articles) only:
they may create a draft and edit it while it is a draft, never publish or delete.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, select, update

from hub.contract.errors import NotFound, PermissionDenied, RejectedInput
from hub.contract.i18n import N_
from hub.contract.principal import Principal
from hub.contract.timefmt import iso
from hub.store.audit import audit
from hub.store.db import read_tx, write_tx
from hub.store.models import KbArticle, KbChunk, KbFeedback, utcnow
from knowledge.passages import FORMATS, split_article

article_t = KbArticle.__table__
chunk_t = KbChunk.__table__
feedback_t = KbFeedback.__table__

DEFAULT_PASSAGE_CHARS = 1200
MAX_PAGE = 200
MAX_HEADING = 300


@dataclass(frozen=True)
class ArticleFields:
    """What a write sets; None leaves a field as it is (on update)."""

    title: str | None = None
    body: str | None = None
    format: str | None = None
    language: str | None = None
    tags: tuple[str, ...] | None = None
    published: bool | None = None


# --- passages --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PassageRow:
    passage_id: str
    heading: str
    text: str


def passages_of(article_id: int, title: str, body: str, fmt: str, language: str, max_chars: int) -> list[PassageRow]:
    """The article's passages with their content-hash ids (deterministic: same article, same ids)."""
    rows: list[PassageRow] = []
    seen: dict[str, int] = {}
    for piece in split_article(title, body, fmt=fmt, max_chars=max_chars):
        heading = piece.heading[:MAX_HEADING]
        digest = hashlib.sha256("\x1f".join((title, heading, piece.text, language)).encode()).hexdigest()[:20]
        pid = f"{article_id}-{digest}"
        # The same text twice in one article (a repeated note): the second gets its own id.
        seen[pid] = seen.get(pid, 0) + 1
        if seen[pid] > 1:
            pid = f"{pid}-{seen[pid]}"
        rows.append(PassageRow(pid, heading, piece.text))
    return rows


def write_passages(conn: Connection, article_id: int, title: str, body: str, fmt: str, language: str, max_chars: int) -> dict[str, int]:
    """Bring the article's kb_chunk rows in line with its text; unchanged passages keep their row
    (and vector). Returns counts of added, kept and removed passages."""
    wanted = passages_of(article_id, title, body, fmt, language, max_chars)
    existing = {
        r.passage_id: (r.id, r.position)
        for r in conn.execute(select(chunk_t.c.id, chunk_t.c.passage_id, chunk_t.c.position).where(chunk_t.c.article_id == article_id))
    }
    wanted_ids = {p.passage_id for p in wanted}
    gone = [row_id for pid, (row_id, _) in existing.items() if pid not in wanted_ids]
    if gone:
        conn.execute(delete(chunk_t).where(chunk_t.c.id.in_(gone)))
    added = 0
    for position, p in enumerate(wanted):
        if p.passage_id in existing:
            row_id, old_position = existing[p.passage_id]
            if old_position != position:
                conn.execute(update(chunk_t).where(chunk_t.c.id == row_id).values(position=position))
            continue
        conn.execute(chunk_t.insert().values(article_id=article_id, passage_id=p.passage_id, position=position,
                                             heading=p.heading, text=p.text))
        added += 1
    return {"added": added, "kept": len(wanted) - added, "removed": len(gone)}


# --- validation ------------------------------------------------------------------------------


def _check(fields: ArticleFields, *, creating: bool) -> None:
    if creating and not (fields.title and fields.body):
        raise RejectedInput(N_("an article needs a title and a body"))
    if fields.title is not None and not fields.title.strip():
        raise RejectedInput(N_("the title cannot be empty"))
    if fields.body is not None and not fields.body.strip():
        raise RejectedInput(N_("the body cannot be empty"))
    if fields.format is not None and fields.format not in FORMATS:
        raise RejectedInput(f"format must be one of: {', '.join(FORMATS)}")


def _may_write(who: Principal, *, published_before: bool | None, published_after: bool) -> None:
    """Agents write drafts only (see the module docstring)."""
    if who.role == "admin":
        return
    if published_before:
        raise PermissionDenied(N_("only an admin can edit a published article; agents can write drafts"))
    if published_after:
        raise PermissionDenied(N_("only an admin can publish an article; agents can write drafts (published: false)"))


# --- writes ----------------------------------------------------------------------------------


def create_article(engine: Engine, fields: ArticleFields, who: Principal, *, source_key: str | None = None,
                   captured_from_message_id: int | None = None, max_chars: int = DEFAULT_PASSAGE_CHARS) -> dict[str, Any]:
    """A new article; published defaults to true for admins and false (a draft) for agents."""
    _check(fields, creating=True)
    published = fields.published if fields.published is not None else who.role == "admin"
    _may_write(who, published_before=None, published_after=published)
    with write_tx(engine) as conn:
        article_id = _insert(conn, fields, published, who.actor, source_key, captured_from_message_id, max_chars)
        audit(conn, who.actor, "kb.article.create", f"kb_article:{article_id}", published=published)
    return get_article(engine, article_id)


def _insert(conn, fields: ArticleFields, published: bool, actor: str, source_key, captured_from, max_chars) -> int:
    now = utcnow()
    fmt = fields.format or "markdown"
    language = fields.language or "en"
    title = fields.title.strip()
    article_id = conn.execute(
        article_t.insert()
        .values(title=title, body=fields.body, format=fmt, language=language, tags=list(fields.tags or ()),
                published=published, source_key=source_key, captured_from_message_id=captured_from,
                created_by=actor, created_at=now, updated_at=now)
        .returning(article_t.c.id)
    ).scalar_one()
    write_passages(conn, article_id, title, fields.body, fmt, language, max_chars)
    return article_id


def update_article(engine: Engine, article_id: int, fields: ArticleFields, who: Principal, *,
                   max_chars: int = DEFAULT_PASSAGE_CHARS) -> dict[str, Any]:
    _check(fields, creating=False)
    with write_tx(engine) as conn:
        row = _require(conn, article_id, lock=True)
        published = fields.published if fields.published is not None else row.published
        _may_write(who, published_before=row.published, published_after=published)
        changed = _apply(conn, row, fields, published, max_chars)
        if changed:
            audit(conn, who.actor, "kb.article.update", f"kb_article:{article_id}", fields=sorted(changed))
    return get_article(engine, article_id)


def _apply(conn, row, fields: ArticleFields, published: bool, max_chars: int) -> dict[str, Any]:
    """Write what differs; the changed values (empty: nothing to do)."""
    new = {
        "title": fields.title.strip() if fields.title is not None else row.title,
        "body": fields.body if fields.body is not None else row.body,
        "format": fields.format or row.format,
        "language": fields.language or row.language,
        "tags": list(fields.tags) if fields.tags is not None else list(row.tags or []),
        "published": published,
    }
    old = {k: (list(row.tags or []) if k == "tags" else getattr(row, k)) for k in new}
    changed = {k: v for k, v in new.items() if v != old[k]}
    if not changed:
        return {}
    conn.execute(update(article_t).where(article_t.c.id == row.id).values(**changed, updated_at=utcnow()))
    write_passages(conn, row.id, new["title"], new["body"], new["format"], new["language"], max_chars)
    return changed


def delete_article(engine: Engine, article_id: int, who: Principal) -> None:
    if who.role != "admin":
        raise PermissionDenied(N_("only an admin can delete an article"))
    with write_tx(engine) as conn:
        row = _require(conn, article_id, lock=True)
        conn.execute(delete(feedback_t).where(feedback_t.c.article_id == article_id))
        conn.execute(delete(chunk_t).where(chunk_t.c.article_id == article_id))
        conn.execute(delete(article_t).where(article_t.c.id == article_id))
        audit(conn, who.actor, "kb.article.delete", f"kb_article:{article_id}", title=row.title)


def repassage_all(engine: Engine, max_chars: int) -> dict[str, int]:
    """Re-cut every article (after a change of the passage size); unchanged passages stay."""
    totals = {"added": 0, "kept": 0, "removed": 0}
    with read_tx(engine) as conn:
        ids = list(conn.execute(select(article_t.c.id).order_by(article_t.c.id)).scalars())
    for article_id in ids:
        with write_tx(engine) as conn:
            row = conn.execute(select(article_t).where(article_t.c.id == article_id)).first()
            if row is None:
                continue
            counts = write_passages(conn, row.id, row.title, row.body, row.format, row.language, max_chars)
        for key in totals:
            totals[key] += counts[key]
    return totals


# --- imports ---------------------------------------------------------------------------------


def upsert_by_source(engine: Engine, fields: ArticleFields, source_key: str, *, actor: str = "cli",
                     max_chars: int = DEFAULT_PASSAGE_CHARS) -> tuple[str, int]:
    """Create the article of `source_key`, or update it when its content changed: ("created" |
    "updated" | "unchanged", article id). `published` applies on creation only, so an article an
    admin unpublished stays unpublished when its file is imported again."""
    _check(fields, creating=True)
    with write_tx(engine) as conn:
        row = conn.execute(select(article_t).where(article_t.c.source_key == source_key)).first()
        if row is None:
            published = fields.published if fields.published is not None else True
            article_id = _insert(conn, fields, published, actor, source_key, None, max_chars)
            audit(conn, actor, "kb.article.create", f"kb_article:{article_id}", source=source_key[:200])
            return "created", article_id
        _require(conn, row.id, lock=True)
        changed = _apply(conn, row, fields, row.published, max_chars)
        if not changed:
            return "unchanged", row.id
        audit(conn, actor, "kb.article.update", f"kb_article:{row.id}", fields=sorted(changed), source=source_key[:200])
        return "updated", row.id


# --- reads -----------------------------------------------------------------------------------


def _require(conn, article_id: int, *, lock: bool = False):
    stmt = select(article_t).where(article_t.c.id == article_id)
    if lock and conn.dialect.name != "sqlite":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFound(N_("article %(id)s does not exist"), params={"id": article_id})
    return row


def _article_dict(row, passages: list[dict] | None = None, passage_count: int | None = None) -> dict[str, Any]:
    out = {
        "id": row.id,
        "title": row.title,
        "body": row.body,
        "format": row.format,
        "language": row.language,
        "tags": list(row.tags or []),
        "published": row.published,
        "source_key": row.source_key,
        "captured_from_message_id": row.captured_from_message_id,
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }
    if passages is not None:
        out["passages"] = passages
    if passage_count is not None:
        out["passage_count"] = passage_count
    return out


def get_article(engine: Engine, article_id: int) -> dict[str, Any]:
    with read_tx(engine) as conn:
        row = _require(conn, article_id)
        passages = [
            {"id": r.passage_id, "position": r.position, "heading": r.heading, "text": r.text}
            for r in conn.execute(
                select(chunk_t.c.passage_id, chunk_t.c.position, chunk_t.c.heading, chunk_t.c.text)
                .where(chunk_t.c.article_id == article_id)
                .order_by(chunk_t.c.position)
            )
        ]
    return _article_dict(row, passages=passages)


def list_articles(engine: Engine, *, published: bool | None = None, language: str | None = None, q: str | None = None,
                  limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
    """Newest first, keyset-paginated by id (the cursor is the last id of the previous page)."""
    limit = max(1, min(limit, MAX_PAGE))
    stmt = select(article_t).order_by(article_t.c.id.desc()).limit(limit + 1)
    if published is not None:
        stmt = stmt.where(article_t.c.published.is_(published))
    if language:
        stmt = stmt.where(article_t.c.language == language)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(article_t.c.title.ilike(pattern, escape="\\"))
    if cursor:
        if not cursor.isdigit() or not (1 <= int(cursor) <= 2_147_483_647):
            raise RejectedInput("the cursor is not valid; use the next_cursor of a previous page")
        stmt = stmt.where(article_t.c.id < int(cursor))
    with read_tx(engine) as conn:
        rows = conn.execute(stmt).all()
        page = rows[:limit]
        counts = dict(
            conn.execute(
                select(chunk_t.c.article_id, func.count()).where(chunk_t.c.article_id.in_([r.id for r in page])).group_by(chunk_t.c.article_id)
            ).all()
        ) if page else {}
    items = []
    for r in page:
        item = _article_dict(r, passage_count=counts.get(r.id, 0))
        item["body"] = r.body[:300]  # a preview; GET the article for all of it
        items.append(item)
    return {"items": items, "next_cursor": str(page[-1].id) if len(rows) > limit else None}


def article_exists(conn, article_id: int) -> bool:
    return conn.execute(select(article_t.c.id).where(article_t.c.id == article_id)).first() is not None


# --- what the index reads ----------------------------------------------------------------------


def published_passage_ids(conn, article_ids: Iterable[int] | None = None) -> set[str]:
    """Ids of every passage the index should hold: those of published articles."""
    stmt = select(chunk_t.c.passage_id).join(article_t, article_t.c.id == chunk_t.c.article_id).where(article_t.c.published.is_(True))
    if article_ids is not None:
        stmt = stmt.where(chunk_t.c.article_id.in_(list(article_ids)))
    return set(conn.execute(stmt).scalars())


def passage_rows(conn, passage_ids: Iterable[str]) -> list:
    """The passages with what the index needs (article title and language, stored vector)."""
    ids = list(passage_ids)
    rows = []
    for start in range(0, len(ids), 500):  # keep IN lists short (SQLite's variable limit)
        rows.extend(
            conn.execute(
                select(chunk_t.c.passage_id, chunk_t.c.article_id, chunk_t.c.heading, chunk_t.c.text, chunk_t.c.vector,
                       chunk_t.c.vector_model, article_t.c.title, article_t.c.language)
                .join(article_t, article_t.c.id == chunk_t.c.article_id)
                .where(chunk_t.c.passage_id.in_(ids[start:start + 500]))
            ).all()
        )
    return rows


def store_vectors(engine: Engine, vectors: dict[str, bytes], model: str) -> None:
    """Keep computed vectors beside their passages (a passage deleted meanwhile is skipped)."""
    if not vectors:
        return
    stmt = update(chunk_t).where(chunk_t.c.passage_id == bindparam("pid")).values(vector=bindparam("vec"), vector_model=model)
    with write_tx(engine) as conn:
        conn.execute(stmt, [{"pid": pid, "vec": vec} for pid, vec in vectors.items()])


def kb_fingerprint(conn) -> tuple:
    """Changes when any article is written or deleted: (articles, passages, last update)."""
    articles, last = conn.execute(select(func.count(), func.max(article_t.c.updated_at)).select_from(article_t)).one()
    passages = conn.execute(select(func.count()).select_from(chunk_t)).scalar_one()
    return articles, passages, iso(last)


# --- what agents said, for the suggestions to learn from -----------------------------------------

LEARNING_VERDICTS = ("used", "not_helpful")


def feedback_questions(conn, *, limit: int, conversation_id: int | None = None, article_id: int | None = None) -> list:
    """The newest "used" / "not_helpful" rows that carry their question (of one conversation and
    article, when given), with the stored question vector."""
    stmt = (
        select(feedback_t.c.id, feedback_t.c.conversation_id, feedback_t.c.article_id, feedback_t.c.verdict, feedback_t.c.question,
               feedback_t.c.question_vector, feedback_t.c.vector_model)
        .where(feedback_t.c.verdict.in_(LEARNING_VERDICTS), feedback_t.c.question.is_not(None))
        .order_by(feedback_t.c.id.desc())
        .limit(limit)
    )
    if conversation_id is not None:
        stmt = stmt.where(feedback_t.c.conversation_id == conversation_id)
    if article_id is not None:
        stmt = stmt.where(feedback_t.c.article_id == article_id)
    return conn.execute(stmt).all()


def store_question_vectors(engine: Engine, vectors: dict[int, bytes], model: str) -> None:
    """Keep computed question vectors beside their feedback rows (a row gone meanwhile is skipped)."""
    if not vectors:
        return
    stmt = update(feedback_t).where(feedback_t.c.id == bindparam("fid")).values(question_vector=bindparam("vec"), vector_model=model)
    with write_tx(engine) as conn:
        conn.execute(stmt, [{"fid": fid, "vec": vec} for fid, vec in vectors.items()])


def feedback_fingerprint(conn) -> tuple:
    """Changes when a verdict with a question is recorded, replaced or erased: (rows, newest id)."""
    return tuple(conn.execute(
        select(func.count(), func.max(feedback_t.c.id))
        .where(feedback_t.c.verdict.in_(LEARNING_VERDICTS), feedback_t.c.question.is_not(None))
    ).one())
