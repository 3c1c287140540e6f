"""The demo's story of continuity, on SQLite and PostgreSQL: Ana's email and her Telegram message
are one conversation with one agent; Chloé's chat continues the matter of her call."""

from __future__ import annotations

from sqlalchemy import select

from hub.demo.seed import seed
from hub.store.models import Conversation, Identity, Message

conv_t, ident_t, message_t = Conversation.__table__, Identity.__table__, Message.__table__


def test_ana_writes_by_email_and_telegram_and_it_is_one_conversation_with_one_agent(engine, tmp_path):
    seed(engine, tmp_path / "data")
    with engine.connect() as conn:
        ana = conn.execute(select(ident_t.c.customer_id).where(ident_t.c.address == "ana.silva@example.com")).scalar()
        assert conn.execute(select(ident_t.c.customer_id).where(ident_t.c.address == "31415926")).scalar() == ana
        convs = conn.execute(select(conv_t).where(conv_t.c.customer_id == ana, conv_t.c.subject.is_not(None),
                                                  conv_t.c.channel != "webform")).all()
        today = [c for c in convs if c.subject == "Where is my order A1001?"]
        assert len(today) == 1 and today[0].assignee_id is not None
        channels = set(conn.execute(select(message_t.c.channel).where(message_t.c.conversation_id == today[0].id,
                                                                      message_t.c.direction == "inbound")).scalars())
        assert channels == {"email", "telegram"}
        chloe_chat = conn.execute(select(message_t.c.conversation_id).where(message_t.c.external_id == "demo-tg-3")).scalar()
        call = conn.execute(select(message_t.c.conversation_id).where(message_t.c.external_id == "demo-call-1")).scalar()
        assert chloe_chat == call
        assert conn.execute(select(conv_t.c.status).where(conv_t.c.id == call)).scalar() == "open"  # reopened
    # again: nothing new
    before = _count(engine)
    seed(engine, tmp_path / "data")
    assert _count(engine) == before


def _count(engine):
    with engine.connect() as conn:
        return len(conn.execute(select(message_t.c.id)).all())
