"""Privacy parts of the satisfaction surveys: the customer's answers and the surveys sent to them.

Export: the answers on their conversations; the surveys (channel, language, times: the token is
only a hash). Erase: the answers keep their score (the satisfaction report) and lose the comment;
the surveys hold nothing about them beyond ids and times and stay.
"""

from __future__ import annotations

from sqlalchemy import select, update

from hub.privacy import Erasure, Export, among, keep, register, rows_of
from hub.store.models import Csat, CsatSurvey

csat_t = Csat.__table__
survey_t = CsatSurvey.__table__


def export_answers(ex: Export) -> None:
    ex.per_conversation["csat"] = rows_of(ex.conn, select(csat_t).where(among(csat_t.c.conversation_id, ex.subject.conversation_ids))
                                          .order_by(csat_t.c.id))


def erase_answers(er: Erasure) -> None:
    er.conn.execute(update(csat_t).where(among(csat_t.c.conversation_id, er.subject.conversation_ids)).values(comment=None))


def export_surveys(ex: Export) -> None:
    ex.other[survey_t.name] = rows_of(ex.conn, select(survey_t.c.id, survey_t.c.conversation_id, survey_t.c.channel, survey_t.c.language,
                                                      survey_t.c.message_id, survey_t.c.created_at, survey_t.c.expires_at)
                                      .where(among(survey_t.c.conversation_id, ex.subject.conversation_ids)).order_by(survey_t.c.id))


register(Csat, export=export_answers, erase=erase_answers)
register(CsatSurvey, export=export_surveys, erase=keep)
