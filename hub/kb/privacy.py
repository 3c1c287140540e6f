"""Privacy parts of the knowledge base: articles captured from the customer's conversations (they
may quote them), their passages, and agents' verdicts on suggestions, which keep the customer's
question.

Export: the captured articles; the verdicts on their conversations. Erase: captured articles go
with their passages and the verdicts on them; the other verdicts on their conversations stay (the
suggestion figures) without the question, its embedding and the model that made it.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update

from hub.privacy import Erasure, Export, among, nothing_to_export, register, rows_of
from hub.store.models import KbArticle, KbChunk, KbFeedback

article_t = KbArticle.__table__
chunk_t = KbChunk.__table__
feedback_t = KbFeedback.__table__


def _captured(conn, message_ids: list[int]) -> list[int]:
    return list(conn.execute(select(article_t.c.id).where(among(article_t.c.captured_from_message_id, message_ids))).scalars())


def export_articles(ex: Export) -> None:
    ex.sections["kb_articles_captured"] = rows_of(ex.conn, select(article_t).where(
        among(article_t.c.captured_from_message_id, ex.subject.message_ids)).order_by(article_t.c.id))


def erase_articles(er: Erasure) -> None:
    ids = _captured(er.conn, er.subject.message_ids)
    er.conn.execute(delete(article_t).where(among(article_t.c.id, ids)))
    er.counts["kb_articles"] = len(ids)


def erase_chunks(er: Erasure) -> None:
    # The passages are the captured article's text, cut up.
    er.conn.execute(delete(chunk_t).where(among(chunk_t.c.article_id, _captured(er.conn, er.subject.message_ids))))


def export_feedback(ex: Export) -> None:
    ex.per_conversation["kb_feedback"] = rows_of(ex.conn, select(feedback_t).where(
        among(feedback_t.c.conversation_id, ex.subject.conversation_ids)).order_by(feedback_t.c.id))


def erase_feedback(er: Erasure) -> None:
    er.conn.execute(delete(feedback_t).where(among(feedback_t.c.article_id, _captured(er.conn, er.subject.message_ids))))
    # The questions agents' verdicts were about are their words (the verdicts stay, as counts).
    er.conn.execute(update(feedback_t).where(among(feedback_t.c.conversation_id, er.subject.conversation_ids))
                    .values(question=None, question_vector=None, vector_model=None))


register(KbArticle, export=export_articles, erase=erase_articles)
register(KbChunk, export=nothing_to_export, erase=erase_chunks)  # exported as the article they cut up
register(KbFeedback, export=export_feedback, erase=erase_feedback)
