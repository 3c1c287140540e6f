"""Answer suggestions on a conversation, what agents say about them, and knowledge capture.

The question is what the customer said last: their latest inbound messages since our last reply
(at most `turns` of them), newest last, after the conversation's subject. A call contributes only
the customer's turns. Suggestions come from published articles only, and only when the best
passage clears the calibrated confidence threshold; below it the answer says so ("no good
answer") instead of offering noise.

Feedback is one row per (conversation, article, verdict): "shown" is recorded when an article is
suggested, "used" / "not_helpful" by the agent; the report counts conversations per article. A
"used" / "not_helpful" row keeps the question it was about (the customer's latest messages, as
the suggestions ask it): the suggestions learn from it (hub/kb/index.py, knowledge/feedback.py).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine, case, delete, func, select
from sqlalchemy.exc import IntegrityError

from hub.contract.errors import Conflict, NotFound, RejectedInput
from hub.contract.i18n import N_, Word
from hub.contract.principal import Principal
from hub.conversations import require_conversation
from hub.kb import articles as kb
from hub.store.audit import audit
from hub.store.db import read_tx, write_tx
from hub.store.models import Conversation, ConversationStatus, Direction, KbArticle, KbFeedback, KbFeedbackVerdict, Message, utcnow
from hub.store.sql import insert_ignoring_conflict

message_t = Message.__table__
conversation_t = Conversation.__table__
article_t = KbArticle.__table__
feedback_t = KbFeedback.__table__

MAX_QUESTION = 2000
RELATIVE_FLOOR = 0.5
# "[00:03] Agent: ..." / "Agent (Yuri): ..." lines of a call transcript are ours, not the question.
_AGENT_LINE = re.compile(r"^\s*(\[[0-9:]+\]\s*)?agent\b[^:]{0,60}:", re.IGNORECASE)
_CUSTOMER_PREFIX = re.compile(r"^\s*(\[[0-9:]+\]\s*)?customer\b[^:]{0,60}:\s*", re.IGNORECASE)
_REPLY_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv|vs)\s*:\s*)+", re.IGNORECASE)


# --- the question ----------------------------------------------------------------------------


def customer_words(text: str, meta: dict | None) -> str:
    """What the customer said in one message: a call's customer turns, else the text."""
    meta = meta or {}
    said = meta.get("customer_text")
    if isinstance(said, str) and said.strip():
        return said.strip()
    lines = (text or "").splitlines()
    if any(_AGENT_LINE.match(line) for line in lines) or any(_CUSTOMER_PREFIX.match(line) for line in lines):
        return "\n".join(_CUSTOMER_PREFIX.sub("", line) for line in lines if not _AGENT_LINE.match(line)).strip()
    return (text or "").strip()


def question_of(conn, conversation_id: int, *, turns: int = 3) -> tuple[str, list[tuple[int, str]]]:
    """(subject, [(message id, what the customer said)]) of a conversation: the customer's latest
    inbound messages since our last reply, oldest first."""
    conv = require_conversation(conn, conversation_id)
    rows = conn.execute(
        select(message_t.c.id, message_t.c.direction, message_t.c.text, message_t.c.metadata)
        .where(message_t.c.conversation_id == conversation_id, message_t.c.direction.in_([Direction.inbound, Direction.outbound]))
        .order_by(message_t.c.id.desc())
        .limit(50)
    ).all()
    picked: list[tuple[int, str]] = []
    for row in rows:
        if row.direction == Direction.outbound:
            if picked:
                break  # what came before our reply was answered already
            continue
        words = customer_words(row.text, row.metadata)
        if words:
            picked.append((row.id, words))
        if len(picked) >= turns:
            break
    picked.reverse()
    return _REPLY_PREFIX.sub("", conv.subject or "").strip(), picked


# An order or ticket reference (#A1001, SO-4711, 100234): never in an article, and a term the
# knowledge base has never seen only lowers the lexical evidence for the words around it.
_REFERENCE = re.compile(r"#?\b(?=[A-Za-z0-9-]*\d{3})[A-Za-z]{0,4}-?\d[\dA-Za-z-]*\b")


def _clean(text: str) -> str:
    return re.sub(r"[ \t]+", " ", _REFERENCE.sub(" ", text)).strip()


def queries_of(subject: str, turns: list[str]) -> list[str]:
    """What to search: everything together, and each message on its own with the subject (a
    customer often asks two things in two messages: the kettle's stock, then delivery to Lagos)."""
    whole = "\n".join([subject, *turns]) if subject else "\n".join(turns)
    queries = [_clean(whole)[:MAX_QUESTION]]
    if len(turns) > 1:
        for turn in turns:
            queries.append(_clean(f"{subject}\n{turn}" if subject else turn)[:MAX_QUESTION])
    return [q for q in dict.fromkeys(queries) if q]


# --- suggestions -----------------------------------------------------------------------------


def hit_dict(hit) -> dict[str, Any]:
    return {
        "article_id": int(hit.article_id),
        "passage_id": hit.passage_id,
        "title": hit.title,
        "heading": hit.heading,
        "snippet": hit.snippet,
        "score": round(float(hit.score), 4),
        "confidence": round(float(hit.confidence), 4),
    }


def suggest(engine: Engine, index, conversation_id: int, *, k: int = 3, turns: int = 3, who: Principal | None = None) -> dict[str, Any]:
    """Suggestions for a conversation (see the module docstring); records them as shown. Only
    passages at or above the confidence threshold, and at least half as confident as the best,
    are suggested, at most one per article."""
    with read_tx(engine) as conn:
        subject, picked = question_of(conn, conversation_id, turns=turns)
    texts = [words for _, words in picked]
    question = "\n".join([subject, *texts]) if subject else "\n".join(texts)
    out: dict[str, Any] = {"conversation_id": conversation_id, "question": question[:MAX_QUESTION],
                           "message_ids": [mid for mid, _ in picked]}
    queries = queries_of(subject, texts) if picked else []
    if not queries:
        return {**out, "status": "no_question", "answerable": False, "confidence": 0.0, "suggestions": []}
    best: dict[str, Any] = {}
    for query in queries:
        for hit in index.search(query, k=k).hits:
            if hit.article_id not in best or hit.confidence > best[hit.article_id].confidence:
                best[hit.article_id] = hit
    ranked = sorted(best.values(), key=lambda h: -h.confidence)
    confidence = round(float(ranked[0].confidence), 4) if ranked else 0.0
    # Beside a confident answer, a passage with less than half its confidence is noise.
    floor = max(index.threshold, (ranked[0].confidence if ranked else 0.0) * RELATIVE_FLOOR)
    good = [hit_dict(h) for h in ranked if h.confidence >= floor][:k]
    if not good:
        return {**out, "status": "no_good_answer", "answerable": False, "confidence": confidence, "suggestions": []}
    record_shown(engine, conversation_id, good, who)
    return {**out, "status": "suggested", "answerable": True, "confidence": confidence, "suggestions": good}


def search(index, query: str, *, k: int = 5, method: str = "hybrid") -> dict[str, Any]:
    query = query.strip()
    if not query:
        raise RejectedInput("q must have some text")
    result = index.search(query[:MAX_QUESTION], k=k, method=method)
    return {"query": query, "answerable": bool(result.answerable), "confidence": round(float(result.confidence), 4),
            "hits": [hit_dict(h) for h in result.hits]}


# --- feedback --------------------------------------------------------------------------------


def record_shown(engine: Engine, conversation_id: int, suggestions: list[dict], who: Principal | None) -> None:
    agent_id = who.id if who is not None and who.is_agent else None
    with write_tx(engine) as conn:
        for s in suggestions:
            insert_ignoring_conflict(conn, feedback_t, {
                "conversation_id": conversation_id, "article_id": s["article_id"], "passage_id": s["passage_id"],
                "verdict": KbFeedbackVerdict.shown, "agent_id": agent_id, "created_at": utcnow(),
            })


def record_feedback(engine: Engine, conversation_id: int, article_id: int, passage_id: str | None, verdict: str,
                    who: Principal, *, turns: int = 3) -> dict[str, Any]:
    """An agent's verdict on a suggested article: "used" or "not_helpful". A new verdict on the
    same article and conversation replaces the other one (the agent changed their mind). The
    question it is about is kept with it: the customer's latest messages since our last reply, as
    `suggest` asks them (after a reply, the messages it answered)."""
    if verdict not in (KbFeedbackVerdict.used, KbFeedbackVerdict.not_helpful):
        raise RejectedInput("verdict must be 'used' or 'not_helpful'")
    other = KbFeedbackVerdict.not_helpful if verdict == KbFeedbackVerdict.used else KbFeedbackVerdict.used
    now = utcnow()
    with write_tx(engine) as conn:
        require_conversation(conn, conversation_id)
        if not kb.article_exists(conn, article_id):
            raise NotFound(N_("article %(id)s does not exist"), params={"id": article_id})
        if passage_id is not None and not passage_id.startswith(f"{article_id}-"):
            raise RejectedInput(f"passage {passage_id!r} is not a passage of article {article_id}")
        conn.execute(delete(feedback_t).where(
            feedback_t.c.conversation_id == conversation_id, feedback_t.c.article_id == article_id, feedback_t.c.verdict == other
        ))
        subject, picked = question_of(conn, conversation_id, turns=turns)
        queries = queries_of(subject, [words for _, words in picked]) if picked else []
        question = queries[0] if queries else None
        created = insert_ignoring_conflict(conn, feedback_t, {
            "conversation_id": conversation_id, "article_id": article_id, "passage_id": passage_id, "verdict": verdict,
            "agent_id": who.id if who.is_agent else None, "created_at": now, "question": question,
        }) is not None
        audit(conn, who.actor, "kb.feedback", f"conversation:{conversation_id}", article_id=article_id, verdict=verdict)
    return {"conversation_id": conversation_id, "article_id": article_id, "passage_id": passage_id, "verdict": verdict,
            "created": created}


def feedback_report(engine: Engine, *, limit: int = 100) -> dict[str, Any]:
    """Per article: in how many conversations it was shown, used, found not helpful; the most
    shown first. used_rate = used / shown."""
    counts = {
        verdict: func.sum(case((feedback_t.c.verdict == verdict, 1), else_=0))
        for verdict in (KbFeedbackVerdict.shown, KbFeedbackVerdict.used, KbFeedbackVerdict.not_helpful)
    }
    stmt = (
        select(feedback_t.c.article_id, article_t.c.title, article_t.c.published, *(c.label(v.value) for v, c in counts.items()))
        .join(article_t, article_t.c.id == feedback_t.c.article_id)
        .group_by(feedback_t.c.article_id, article_t.c.title, article_t.c.published)
        .order_by(counts[KbFeedbackVerdict.shown].desc(), feedback_t.c.article_id)
        .limit(limit)
    )
    with read_tx(engine) as conn:
        rows = conn.execute(stmt).all()
    items = []
    for r in rows:
        shown, used, not_helpful = int(r.shown or 0), int(r.used or 0), int(r.not_helpful or 0)
        items.append({"article_id": r.article_id, "title": r.title, "published": r.published, "shown": shown, "used": used,
                      "not_helpful": not_helpful, "used_rate": round(used / shown, 4) if shown else None})
    return {"items": items}


# --- knowledge capture -----------------------------------------------------------------------


def capture_reply(engine: Engine, conversation_id: int, message_id: int, who: Principal, *, title: str | None = None,
                  tags: tuple[str, ...] = (), passage_chars: int = kb.DEFAULT_PASSAGE_CHARS,
                  published: bool = False) -> tuple[dict[str, Any], bool]:
    """An agent's reply in a resolved conversation becomes a draft article (question and answer);
    an admin reviews and publishes it, or captures it published at once (`published`: admins
    only, as for any article). Capturing the same reply again returns the same article.
    Returns (article, created)."""
    source_key = f"capture:message:{message_id}"
    with read_tx(engine) as conn:
        conv = require_conversation(conn, conversation_id)
        reply = conn.execute(select(message_t).where(message_t.c.id == message_id, message_t.c.conversation_id == conversation_id)).first()
        if reply is None:
            raise NotFound(N_("message %(id)s is not in conversation %(conversation)s"), params={"id": message_id, "conversation": conversation_id})
        existing = conn.execute(select(article_t.c.id).where(article_t.c.source_key == source_key)).scalar()
        if existing is not None:
            return kb.get_article(engine, existing), False
        if reply.direction != Direction.outbound or reply.author_agent_id is None:
            raise RejectedInput(N_("only an agent's reply can be captured (not a customer message, a note or an automatic message)"))
        if conv.status not in (ConversationStatus.resolved, ConversationStatus.closed):
            raise Conflict(N_("conversation %(id)s is %(status)s: resolve it first, so only answers that worked are captured"),
                           params={"id": conversation_id, "status": Word(conv.status)})
        before = conn.execute(
            select(message_t.c.text, message_t.c.metadata)
            .where(message_t.c.conversation_id == conversation_id, message_t.c.direction == Direction.inbound,
                   message_t.c.id < message_id)
            .order_by(message_t.c.id.desc())
            .limit(3)
        ).all()
    question = "\n\n".join(customer_words(r.text, r.metadata) for r in reversed(before)).strip()
    answer = (reply.text or "").strip()
    if not answer:
        raise RejectedInput(N_("the reply has no text to capture"))
    subject = _REPLY_PREFIX.sub("", conv.subject or "").strip()
    title = (title or subject or question.split("\n")[0][:120] or f"Answer from conversation {conversation_id}").strip()[:300]
    body = f"## Question\n\n{question}\n\n## Answer\n\n{answer}" if question else answer
    fields = kb.ArticleFields(title=title, body=body, format="markdown", tags=tuple(tags), published=published)
    try:
        article = kb.create_article(engine, fields, who, source_key=source_key, captured_from_message_id=message_id,
                                    max_chars=passage_chars)
    except IntegrityError:  # captured at the same moment by another request: that draft it is
        with read_tx(engine) as conn:
            existing = conn.execute(select(article_t.c.id).where(article_t.c.source_key == source_key)).scalar()
        if existing is None:
            raise
        return kb.get_article(engine, existing), False
    return article, True
