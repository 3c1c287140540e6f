"""Demo history for the reports: weeks of past conversations over every channel, with
first responses, resolutions, SLA outcomes, satisfaction answers and intents.

Four weeks of made-up traffic (deterministic: a fixed random seed), written in one transaction with
bulk inserts (well under a second on SQLite): three demo agents (inactive, so that assignment
never picks them), 160 customers in the three segments, ~700 conversations on email, Telegram,
phone and web forms with their inbound messages and the agent's reply, first-response and
resolution times that differ by channel, SLA targets (the shared columns first_response_due_at /
resolution_due_at), survey answers that differ by channel and agent, intents, and stock questions
(demand_count). Idempotent: external ids start with `demo-history-`, and a store that has them is
left alone.
"""

from __future__ import annotations

import random
import secrets
from datetime import timedelta

from sqlalchemy import Engine, insert, select

from hub.auth.accounts import hash_password
from hub.store.db import write_tx
from hub.store.models import Agent, Conversation, Csat, Customer, DemandCount, Identity, Message, utcnow
from hub.store.sql import insert_ignoring_conflict

PREFIX = "demo-history-"
DAYS = 28
SEED = 9

AGENTS = (("history-mia@example.com", "Mia Novak"), ("history-omar@example.com", "Omar Haddad"),
          ("history-lea@example.com", "Léa Dubois"))
# channel: (share of conversations, identity kind, first response minutes (median), resolution hours)
CHANNELS = {
    "email": (0.40, "email", 95, 20),
    "telegram": (0.30, "telegram", 8, 3),
    "voice": (0.15, "phone", 2, 1),
    "webform": (0.15, "email", 120, 26),
}
# channel: survey score weights for 1..5
SCORES = {"email": (4, 6, 12, 38, 40), "telegram": (2, 3, 8, 30, 57), "voice": (6, 8, 16, 35, 35),
          "webform": (7, 10, 18, 35, 30)}
AGENT_BONUS = (0.4, 0.0, -0.6)  # Mia's customers are happiest, Léa's least
INTENTS = (("order_status", 34), ("stock", 20), ("delivery", 14), ("returns", 10), ("billing", 8), ("complaint", 7),
           ("other", 7))
SUBJECTS = {"order_status": "Where is my order?", "stock": "Is it in stock?", "delivery": "Delivery time",
            "returns": "Returning an item", "billing": "Charged twice", "complaint": "Not happy with the service",
            "other": "A question"}
FIRST = ("Amara", "Bruno", "Chen", "Dana", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kofi", "Lena", "Mateo",
         "Nora", "Oskar", "Priya", "Quinn", "Rosa", "Sven", "Tara")
LAST = ("Adams", "Berg", "Costa", "Diaz", "Eze", "Fischer", "Garcia", "Holm", "Ivanova", "Jensen", "Kato", "Lopez")
PRODUCTS = (("KET-BLUE", "Blue kettle"), ("X200-BLK", "X200 headphones (black)"), ("TOAST-2", "Two-slot toaster"),
            ("MUG-SET", "Mug set"), ("LAMP-01", "Desk lamp"))
FIRST_RESPONSE_TARGET = {"urgent": 15, "high": 30, "normal": 60, "low": 240}  # minutes
RESOLUTION_TARGET = {"urgent": 4, "high": 8, "normal": 24, "low": 72}  # hours


def seed_history(engine: Engine) -> None:
    """Seed the history once (idempotent)."""
    msg_t = Message.__table__
    with write_tx(engine) as conn:
        # The first conversation's first message, on whichever channel it went (the unique index).
        done = conn.execute(select(msg_t.c.id).where(msg_t.c.channel.in_(list(CHANNELS)),
                                                     msg_t.c.external_id == f"{PREFIX}1-0")).first()
        if done is not None:
            return
        _seed(conn, random.Random(SEED))


def _seed(conn, rnd: random.Random) -> None:
    agent_t, cust_t, ident_t = Agent.__table__, Customer.__table__, Identity.__table__
    conv_t, msg_t, csat_t = Conversation.__table__, Message.__table__, Csat.__table__
    now = utcnow()
    start = now - timedelta(days=DAYS)

    agent_ids = []
    # Nobody signs in as them (inactive, a random password): one hash will do for the three.
    password_hash = None
    for email, name in AGENTS:
        row = conn.execute(select(agent_t.c.id).where(agent_t.c.email == email)).first()
        if row is None:
            password_hash = password_hash or hash_password(secrets.token_urlsafe(24))
            row = conn.execute(insert(agent_t).values(
                email=email, name=name, password_hash=password_hash, role="agent",
                active=False, created_at=start).returning(agent_t.c.id)).first()
        agent_ids.append(row[0])

    # Customers, each reachable on one channel's kind of identity (their first conversation's).
    # Bulk inserts with RETURNING, ids in the order of the rows (SQLAlchemy's insertmanyvalues).
    people = []
    for i in range(160):
        channel = rnd.choices(list(CHANNELS), [c[0] for c in CHANNELS.values()])[0]
        kind = CHANNELS[channel][1]
        address = {"email": f"{PREFIX}{i}@example.net", "telegram": f"99{i:06d}", "phone": f"+4930555{i:05d}"}[kind]
        people.append((f"{rnd.choice(FIRST)} {rnd.choice(LAST)}", rnd.choices(("general", "potential", "key"), (70, 20, 10))[0],
                       channel, kind, address))
    customer_ids = _insert_many(conn, cust_t, [{"name": name, "segment": segment, "segment_locked": True,
                                               "created_at": start, "updated_at": start}
                                              for name, segment, *_ in people])
    identity_ids = _insert_many(conn, ident_t, [{"customer_id": cid, "kind": kind, "address": address, "display_name": name,
                                                     "verified": False, "created_at": start}
                                                for cid, (name, _, _, kind, address) in zip(customer_ids, people)])
    customers = [(cid, p[2], ident, p[1]) for cid, ident, p in zip(customer_ids, identity_ids, people)]

    convs, messages, answers = [], [], []  # messages and answers carry their conversation's index
    for n in range(1, 701):
        cid, channel, ident, segment = rnd.choice(customers)
        _, _, fr_median, res_median = CHANNELS[channel]
        day = rnd.random() ** 0.8 * DAYS  # a little busier lately
        created = now - timedelta(days=day)
        created = created.replace(hour=rnd.choice((8, 9, 9, 10, 10, 11, 12, 13, 14, 14, 15, 16, 17, 19, 21)),
                                  minute=rnd.randrange(60))
        if created > now - timedelta(hours=1):
            created -= timedelta(days=1)
        age = now - created
        intent = rnd.choices([i for i, _ in INTENTS], [w for _, w in INTENTS])[0]
        priority = "high" if segment == "key" else rnd.choices(("low", "normal", "high", "urgent"), (15, 70, 10, 5))[0]
        agent_no = rnd.randrange(len(agent_ids))
        first = created + timedelta(minutes=fr_median * rnd.lognormvariate(0, 0.8))
        resolved = first + timedelta(hours=res_median * rnd.lognormvariate(0, 0.9))
        answered_first = first < now - timedelta(minutes=5) and rnd.random() > 0.03
        is_resolved = answered_first and resolved < now - timedelta(hours=1) and (age > timedelta(days=2) or rnd.random() < 0.6)
        status = ("closed" if rnd.random() < 0.3 else "resolved") if is_resolved else rnd.choice(("open", "pending"))
        values = {
            "customer_id": cid, "channel": channel, "subject": SUBJECTS[intent] if channel in ("email", "webform") else None,
            "thread_key": None, "status": status, "priority": priority, "assignee_id": agent_ids[agent_no], "intent": intent,
            "first_response_at": first if answered_first else None, "resolved_at": resolved if is_resolved else None,
            "last_message_at": resolved if is_resolved else (first if answered_first else created),
            "created_at": created, "updated_at": created,
        }
        values.update(first_response_due_at=created + timedelta(minutes=FIRST_RESPONSE_TARGET[priority]),
                      resolution_due_at=created + timedelta(hours=RESOLUTION_TARGET[priority]), sla_policy=f"demo {priority}")
        conv = len(convs)
        convs.append(values)
        for k in range(rnd.choices((1, 2, 3, 4), (55, 28, 12, 5))[0]):
            at = min(created + timedelta(minutes=k * rnd.randrange(1, 30)), now)  # a recent one's follow-ups: never ahead of now
            messages.append({"conversation_id": conv, "direction": "inbound", "channel": channel,
                                 "external_id": f"{PREFIX}{n}-{k}", "identity_id": ident, "author_agent_id": None,
                                 "subject": None, "text": f"({SUBJECTS[intent].lower()})", "html": None, "sent_at": at,
                                 "created_at": at, "metadata": {"intent": intent, "demo_history": True}})
        if answered_first:
            messages.append({"conversation_id": conv, "direction": "outbound", "channel": channel,
                                 "external_id": f"{PREFIX}{n}-reply", "identity_id": None, "author_agent_id": agent_ids[agent_no],
                                 "subject": None, "text": "Thanks for writing, here is what I found.", "html": None,
                                 "sent_at": first, "created_at": first, "metadata": {"demo_history": True}})
        if is_resolved and rnd.random() < 0.55:
            weights = list(SCORES[channel])
            bonus = AGENT_BONUS[agent_no]
            weights = [max(1.0, w * (1 + bonus * (i - 2) / 2)) for i, w in enumerate(weights)]
            score = rnd.choices((1, 2, 3, 4, 5), weights)[0]
            at = min(now, resolved + timedelta(hours=rnd.uniform(0.2, 30)))
            answers.append({"conversation_id": conv, "score": score, "comment": None, "created_at": at,
                            "agent_id": agent_ids[agent_no], "channel": "web" if channel != "telegram" else "telegram",
                            "answered_at": at})

    conv_ids = _insert_many(conn, conv_t, convs)
    for row in messages + answers:
        row["conversation_id"] = conv_ids[row["conversation_id"]]
    conn.execute(insert(msg_t), messages)  # "metadata": the column's name (Message.meta in Python)
    if answers:
        conn.execute(insert(csat_t), answers)

    # Stock questions per day: the kettle and the headphones run out in the second half. Marked
    # as pushed: made-up demand is never sent to the back end's record_demand().
    demand_t = DemandCount.__table__
    for d in range(DAYS):
        day = (now - timedelta(days=d)).date()
        for sku, name in PRODUCTS:
            asked = rnd.randrange(0, 6)
            if not asked:
                continue
            short = sku in ("KET-BLUE", "X200-BLK") and d < DAYS // 2
            unavailable = rnd.randrange(1, asked + 1) if short else (1 if rnd.random() < 0.08 else 0)
            insert_ignoring_conflict(conn, demand_t, {
                "day": day, "sku": sku, "product_name": name, "asked": asked, "unavailable": min(unavailable, asked),
                "pushed_asked": asked, "pushed_unavailable": min(unavailable, asked), "pushed_at": now, "updated_at": now})


def _insert_many(conn, table, rows: list[dict]) -> list[int]:
    """Insert the rows in one statement batch; their ids, in the rows' order."""
    stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return [r[0] for r in conn.execute(stmt, rows)]
