"""What happens to a customer's message after it is stored: its intent is detected; for order and
stock questions the back end is asked and the facts are attached to the conversation; where the
channel's policy, the confidence and the privacy rule allow it, the customer gets an automatic
answer through the outbox, otherwise a drafted reply waits for the agent.

Ingest never waits for any of this. New inbound messages have message.routed_at NULL (a partial
index keeps them cheap to find); the RoutingWorker, woken by an ingest listener, claims them in
batches with a lease in routing_attempt (safe with several hub processes: the lease is taken by an
insert on a unique key or a compare-and-set update), asks the back end outside any transaction,
then records everything in one transaction that also sets routed_at, guarded by
"WHERE routed_at IS NULL": the automatic answer's outbox row, the facts, the draft, the demand
count and a rule's escalation commit together, exactly once, even if a lease ran out and two
workers routed the same message.

When the back end is down the message keeps routed_at NULL, the failure is stored as a fact (the
agent sees it) and the lease becomes a retry with backoff; nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, exists, or_, select, text, update

from adapters.base import (
    BackendError,
    BackendUnavailable,
    CustomerRef,
    NotTheCustomersOrder,
    ProductRef,
    UnknownOrder,
    UnknownProduct,
    belongs_to,
)
from hub.contract.addresses import normalise_email
from hub.contract.errors import HubError
from hub.contract.messages import AUTOMATED_FLAGS
from hub.contract.timefmt import iso
from hub.conversations import bumped, bumped_if, queue_outbound, require_conversation
from hub.ingest import clean_subject
from hub.runtime.pacing import IngestMeter, Pacer
from hub.scm import coverage, demand
from hub.scm import wording as answers
from hub.scm.backend import ScmServices, customer_ref
from hub.scm.escalation import create_escalation
from hub.scm.owner_copy import send_to_order_address
from hub.store.db import read_tx, write_tx
from hub.store.models import Conversation, ConversationStatus, Customer, Identity, Message, ReplyDraft, RoutingAttempt, ScmFact, utcnow
from hub.store.sql import insert_ignoring_conflict
from hub.store.workqueue import PollingWorker, RetryPolicy
from knowledge.intents import Intent

log = logging.getLogger(__name__)

message_t = Message.__table__
conversation_t = Conversation.__table__
customer_t = Customer.__table__
identity_t = Identity.__table__
attempt_t = RoutingAttempt.__table__
fact_t = ScmFact.__table__
draft_t = ReplyDraft.__table__

ORDER_STATUS, STOCK = "order_status", "stock"
# A message naming more than this many orders or products is for a person to read.
MAX_LOOKUPS = 3
# Literal, like the partial index's predicate, so that SQLite and PostgreSQL use the index.
UNROUTED = text("message.routed_at IS NULL AND message.direction = 'inbound'")
# Conversation tokens in reply subjects ("[#1234]") are not order numbers.
_SUBJECT_TOKEN = re.compile(r"\[#\d+\]")


# --- what a routing pass works on ---------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """A claimed inbound message with what routing needs to know about its sender."""

    message_id: int
    attempts: int
    conversation_id: int
    conversation_channel: str
    channel: str
    text: str
    subject: str | None
    flags: tuple[str, ...]
    created_at: datetime
    # The person who asked (the customer of the message's sender), not the conversation's: the
    # privacy rule, verified identities only.
    customer: CustomerRef
    claimed: CustomerRef  # every address the asker wrote from: for internal rules, never disclosure
    is_reply: bool = False  # answers an earlier message (In-Reply-To, "Re:"): its subject is the thread's
    # The conversation's customer when somebody else asked (a colleague on Cc): answers go to them
    # (hub.conversations.replies.recipient), so nothing is disclosed that is not theirs too, and nothing
    # goes out automatically.
    recipient: CustomerRef | None = None
    # The address the message came from when it is an email address (an email's From, a form's
    # address): anyone can type it, so it never unlocks an answer on the asker's channel, but an
    # answer sent to it, when it is the order's own, reaches the order's owner.
    asker_email: str | None = None
    # An agent replied or wrote a note in the conversation lately: automatic answers keep out.
    agent_answering: bool = False

    @property
    def automated(self) -> bool:
        return bool(AUTOMATED_FLAGS.intersection(self.flags))

    @property
    def detection_text(self) -> str:
        """A new email often asks in its subject ("Where is my order A1001?"); a reply's subject
        is the thread's old question, so a "thanks, got it" is read on its own."""
        subject = clean_subject(_SUBJECT_TOKEN.sub("", self.subject or ""))
        if self.is_reply or not subject or subject in self.text:
            return self.text
        return f"{subject}\n{self.text}"


@dataclass
class Fact:
    kind: str  # "order" | "stock"
    subject: str
    payload: Any = None
    error: str | None = None
    error_message: str | None = None
    disclosed: bool = False
    shareable: bool = False  # the customer may see it (privacy rule, or stock)


@dataclass
class Outcome:
    """What routing decided for one message; recorded in one transaction by record()."""

    question: Question
    intent: Intent | None = None
    facts: list[Fact] = field(default_factory=list)
    answer: str | None = None  # goes to the customer automatically
    draft: str | None = None  # waits for the agent
    draft_reason: str | None = None
    demand: list[tuple[str, str | None, bool]] = field(default_factory=list)  # (sku, name, unavailable)
    escalations: list[tuple[str, str]] = field(default_factory=list)  # (dedupe_key, reason)
    failure: BackendError | None = None  # the back end is down: retry later
    error: str | None = None  # routing itself failed (a bug): retry later
    # The answer goes by email to this address, the order's own, which the asker wrote from.
    answer_to: str | None = None
    # (order ref, the order's email address, the status): sent there, whoever asked.
    owner_copies: list[tuple[str, str, str]] = field(default_factory=list)
    # Questions of the message the facts do not answer: the conversation stays open with them marked.
    left_open: list[str] = field(default_factory=list)


# --- claiming ---------------------------------------------------------------------------------


def _candidates(now: datetime, limit: int):
    busy = exists().where(
        attempt_t.c.message_id == message_t.c.id,
        or_(attempt_t.c.next_attempt_at > now, attempt_t.c.locked_until >= now),
    )
    return select(message_t.c.id).where(UNROUTED, ~busy).order_by(message_t.c.id).limit(limit)


def claim(engine: Engine, *, limit: int, lease_seconds: float, now: datetime | None = None) -> list[tuple[int, int]]:
    """Take up to `limit` unrouted inbound messages that nobody holds and that are due: returns
    (message id, attempt number). A lease that runs out (its worker died) makes a message due."""
    now = now or utcnow()
    with read_tx(engine) as conn:
        # Looking first keeps an idle worker from taking SQLite's write lock every poll.
        if not conn.execute(_candidates(now, 1)).first():
            return []
    lease = now + timedelta(seconds=lease_seconds)
    claimed: list[tuple[int, int]] = []
    with write_tx(engine) as conn:
        for message_id in conn.execute(_candidates(now, limit)).scalars().all():
            new = insert_ignoring_conflict(
                conn,
                attempt_t,
                {"message_id": message_id, "attempts": 1, "next_attempt_at": now, "locked_until": lease, "updated_at": now},
            )
            if new is not None:
                claimed.append((message_id, 1))
                continue
            # Compare-and-set: on PostgreSQL a concurrent claimer waits for our row lock and then
            # re-checks the condition, so exactly one of two workers gets a due message.
            attempts = conn.execute(
                update(attempt_t)
                .where(
                    attempt_t.c.message_id == message_id,
                    attempt_t.c.next_attempt_at <= now,
                    or_(attempt_t.c.locked_until.is_(None), attempt_t.c.locked_until < now),
                )
                .values(attempts=attempt_t.c.attempts + 1, locked_until=lease, updated_at=now)
                .returning(attempt_t.c.attempts)
            ).scalar()
            if attempts is not None:
                claimed.append((message_id, attempts))
    return claimed


def load_questions(engine: Engine, claimed: list[tuple[int, int]]) -> list[Question]:
    attempts = dict(claimed)
    with read_tx(engine) as conn:
        rows = conn.execute(
            select(
                message_t.c.id, message_t.c.conversation_id, message_t.c.channel, message_t.c.text,
                message_t.c.subject, message_t.c.metadata, message_t.c.created_at,
                conversation_t.c.channel.label("conversation_channel"), conversation_t.c.customer_id,
                identity_t.c.customer_id.label("asker_id"), identity_t.c.kind.label("asker_kind"),
                identity_t.c.address.label("asker_address"),
            )
            .join(conversation_t, conversation_t.c.id == message_t.c.conversation_id)
            .outerjoin(identity_t, identity_t.c.id == message_t.c.identity_id)
            .where(message_t.c.id.in_(list(attempts)))
            .order_by(message_t.c.id)
        ).all()
        customer_ids = {r.customer_id for r in rows} | {r.asker_id for r in rows if r.asker_id is not None}
        answering = _agent_answering(conn, {r.conversation_id for r in rows})
        customers: dict[int, Any] = {}
        identities: dict[int, list] = {}
        if customer_ids:
            for c in conn.execute(
                select(customer_t.c.id, customer_t.c.name, customer_t.c.segment).where(customer_t.c.id.in_(customer_ids))
            ).all():
                customers[c.id] = c
            for ident in conn.execute(
                select(identity_t.c.customer_id, identity_t.c.kind, identity_t.c.address, identity_t.c.verified)
                .where(identity_t.c.customer_id.in_(customer_ids))
            ).all():
                identities.setdefault(ident.customer_id, []).append(ident)

    def verified(customer_id: int) -> CustomerRef:
        c = customers[customer_id]
        return customer_ref(customer_id, c.name, c.segment, identities.get(customer_id, []))

    out = []
    for r in rows:
        asker = r.asker_id if r.asker_id in customers else r.customer_id
        idents = identities.get(asker, [])
        meta = r.metadata or {}
        out.append(
            Question(
                message_id=r.id,
                attempts=attempts[r.id],
                conversation_id=r.conversation_id,
                conversation_channel=r.conversation_channel,
                channel=r.channel,
                text=r.text or "",
                subject=r.subject,
                flags=tuple(meta.get("flags") or ()),
                created_at=r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC),
                customer=verified(asker),
                claimed=CustomerRef(
                    customer_id=asker,
                    emails=tuple(i.address for i in idents if i.kind == "email"),
                    phones=tuple(i.address for i in idents if i.kind == "phone"),
                    name=customers[asker].name,
                    segment=customers[asker].segment,
                ),
                is_reply=bool(meta.get("in_reply_to")) or (clean_subject(r.subject) or "") != (r.subject or "").strip(),
                recipient=None if asker == r.customer_id else verified(r.customer_id),
                asker_email=r.asker_address if r.asker_kind == "email" else None,
                agent_answering=r.conversation_id in answering,
            )
        )
    return out


# An agent's reply or note this recent means the agent has the conversation in hand.
AGENT_ANSWERING_WINDOW = timedelta(hours=24)


def _agent_answering(conn: Connection, conversation_ids: set[int]) -> set[int]:
    """The conversations among these in which an agent replied or wrote a note lately."""
    if not conversation_ids:
        return set()
    since = utcnow() - AGENT_ANSWERING_WINDOW
    return set(conn.execute(
        select(message_t.c.conversation_id).distinct()
        .where(message_t.c.conversation_id.in_(sorted(conversation_ids)), message_t.c.author_agent_id.is_not(None),
               message_t.c.direction.in_(["outbound", "note"]), message_t.c.created_at >= since)
    ).scalars())


# --- deciding -----------------------------------------------------------------------------------


def why_not_automatic(q: Question, intent: Intent, scm, now: datetime) -> str | None:
    """None when the channel policy lets this question be answered automatically, else why not."""
    if not scm.auto_answer:
        return "automatic_answers_off"
    if q.recipient is not None:
        return "asked_by_another_sender"  # the answer would go to the conversation's customer, not the asker
    if q.agent_answering:
        return "agent_answering"  # two answers to one question, one of them a machine's, is worse than one
    # The answer goes where the question came from (a conversation that began with a call and goes
    # on by chat is answered in the chat): the question's channel decides.
    if q.channel not in scm.auto_answer_channels:
        return "channel_policy"
    if intent.confidence < scm.auto_answer_min_confidence:
        return "low_confidence"
    if (now - q.created_at).total_seconds() > scm.auto_answer_max_age_seconds:
        return "question_too_old"
    return None


def detect_all(services: ScmServices, questions: list[Question]) -> list[Intent | None]:
    """The intents of a batch in one go (call it off the event loop); None for automated mail,
    which is never answered and never worth a back-end call."""
    return [None if q.automated else services.detect(q.detection_text) for q in questions]


async def route(q: Question, services: ScmServices, scm, *, intent: Intent | None = None,
                now: datetime | None = None) -> Outcome:
    """Ask the back end about what the question names, and decide between an automatic answer
    and a draft. No writes. `intent`: detected already (detect_all), else detected here."""
    out = Outcome(q)
    if q.automated:
        return out
    if intent is None:
        intent = await asyncio.to_thread(services.detect, q.detection_text)
    out.intent = intent
    if intent.name not in (ORDER_STATUS, STOCK):
        return out
    language = answers.language_of(intent.language)
    sentences: list[str] = []
    reasons: list[str] = []
    if intent.name == ORDER_STATUS:
        await _orders(out, services, intent, language, sentences, reasons)
    else:
        await _stock(out, services, intent, language, sentences, reasons)
    if out.failure is not None:
        return out
    blocked = why_not_automatic(q, intent, scm, now or utcnow())
    name = (q.recipient or q.customer).name  # whom the answer is addressed to
    if not reasons and blocked is None and sentences:
        subjects = [f.subject for f in out.facts] + [m.text for m in intent.products] + [m.sku for m in intent.products if m.sku]
        out.left_open = coverage.left_open(q.detection_text, intent.name, subjects, services.detect)
        if out.left_open:
            sentences.append(answers.rest_for_a_colleague(language))
        out.answer = answers.compose(sentences, name=name, language=language, automatic=True)
        for fact in out.facts:
            fact.disclosed = fact.shareable
    else:
        out.draft = answers.compose(sentences, name=name, language=language)
        out.draft_reason = reasons[0] if reasons else blocked or "nothing_to_answer"
        out.owner_copies, out.answer_to = [], None  # nothing goes out automatically
    return out


async def _orders(out: Outcome, services: ScmServices, intent: Intent, language: str,
                  sentences: list[str], reasons: list[str]) -> None:
    q = out.question
    refs = list(dict.fromkeys(intent.orders))
    if not refs and q.subject:
        # The order number may sit in the subject alone, or a follow-up only says "any news?".
        refs = list(dict.fromkeys(services.detect(q.subject).orders))
    if not refs:
        sentences.append(answers.ask_for_order_number(language))
        reasons.append("no_order_reference")
        return
    if len(refs) > MAX_LOOKUPS:
        reasons.append("too_many_orders")
        refs = refs[:MAX_LOOKUPS]
    for ref in refs:
        try:
            order = await services.backend.order_status(ref, q.customer)
        except BackendUnavailable as exc:
            out.failure = exc
            out.facts.append(Fact("order", ref, error=exc.code, error_message=str(exc)))
            return
        except NotTheCustomersOrder as exc:
            out.facts.append(Fact("order", ref, error=exc.code, error_message=str(exc)))
            sentences.append(answers.privacy_notice(ref, language))
            reasons.append("privacy")
            continue
        except UnknownOrder as exc:
            out.facts.append(Fact("order", ref, error=exc.code, error_message=str(exc)))
            sentences.append(answers.unknown_order(ref, language))
            reasons.append("unknown_order")
            continue
        except BackendError as exc:
            out.facts.append(Fact("order", ref, error=exc.code, error_message=str(exc)))
            reasons.append(exc.code)
            continue
        mine = belongs_to(order, q.customer) and (q.recipient is None or belongs_to(order, q.recipient))
        own_address = normalise_email(order.owner_email) if order.owner_email else None
        # The asker wrote from the order's own address (unverified: anyone can type a From): the
        # answer goes by email to that address and nowhere else, so only its owner reads it.
        from_owner = not mine and q.recipient is None and own_address is not None and q.asker_email == own_address
        out.facts.append(Fact("order", order.ref, payload=answers.to_json(order), shareable=mine or from_owner))
        if order.state not in answers.ANSWERABLE_STATES and (mine or own_address):
            reasons.append(f"order_{order.state}")
        if mine:
            sentences.append(answers.order_sentence(order, language))
        elif from_owner:
            sentences.append(answers.order_sentence(order, language))
            out.answer_to = own_address
        elif own_address is not None and q.recipient is None:
            # Somebody else, or the owner on a channel nothing ties to the order: the status goes
            # to the order's address, and the asker hears that it went there (not where).
            out.owner_copies.append((order.ref, own_address, answers.compose(
                [answers.order_sentence(order, language)], language=language, automatic=True)))
            sentences.append(answers.sent_to_order_address(order.ref, language))
        else:
            sentences.append(answers.privacy_notice(order.ref, language))
            reasons.append("privacy")
        # Internal, nothing disclosed: the addresses the customer wrote from are enough here.
        if order.late and q.customer.segment == "key" and belongs_to(order, q.claimed):
            reason = f"Order {order.ref} is late for key customer {q.customer.name or q.customer.customer_id}"
            if order.promised_date:
                reason += f": promised {order.promised_date.isoformat()}"
            if order.expected_date:
                reason += f", now expected {order.expected_date.isoformat()}"
            out.escalations.append((f"late_order:{q.conversation_id}:{order.ref}", reason))


async def _stock(out: Outcome, services: ScmServices, intent: Intent, language: str,
                 sentences: list[str], reasons: list[str]) -> None:
    mentions = list(intent.products)
    if not mentions:
        sentences.append(answers.ask_which_product(language))
        reasons.append("no_product")
        return
    if len(mentions) > MAX_LOOKUPS:
        reasons.append("too_many_products")
        mentions = mentions[:MAX_LOOKUPS]
    for m in mentions:
        asked_as = m.sku or m.text
        try:
            levels = await services.backend.stock(ProductRef(sku=m.sku, text=m.text, variant=m.variant, quantity=m.quantity))
        except BackendUnavailable as exc:
            out.failure = exc
            out.facts.append(Fact("stock", asked_as, error=exc.code, error_message=str(exc)))
            return
        except UnknownProduct as exc:
            out.facts.append(Fact("stock", asked_as, error=exc.code, error_message=str(exc)))
            sentences.append(answers.unknown_product(m.text or asked_as, language))
            reasons.append("unknown_product")
            continue
        except BackendError as exc:
            out.facts.append(Fact("stock", asked_as, error=exc.code, error_message=str(exc)))
            reasons.append(exc.code)
            continue
        if not levels:
            out.facts.append(Fact("stock", asked_as, error="unknown_product", error_message="the back end has no stock record"))
            sentences.append(answers.unknown_product(m.text or asked_as, language))
            reasons.append("unknown_product")
            continue
        out.facts.append(Fact("stock", asked_as, payload=answers.to_json(levels), shareable=True))
        sentences.append(answers.stock_sentence(levels, language, quantity=m.quantity))
        wanted = m.quantity or 1
        by_sku: dict[str, list] = {}
        for level in levels:
            by_sku.setdefault(level.sku, []).append(level)
        for sku, rows in by_sku.items():
            out.demand.append((sku, rows[0].product_name, answers.available(rows) < wanted))


# --- recording --------------------------------------------------------------------------------

# Built once: recording binds values to cached compiled statements (building a statement per
# message cost more than running it).
_MARK_ROUTED = (
    update(message_t)
    .where(message_t.c.id.in_(bindparam("ids", expanding=True)), message_t.c.routed_at.is_(None))
    .values(routed_at=bindparam("now"))
    .returning(message_t.c.id)
)
_END_ATTEMPTS = delete(attempt_t).where(attempt_t.c.message_id.in_(bindparam("ids", expanding=True)))
_DROP_FACTS = delete(fact_t).where(fact_t.c.message_id == bindparam("mid"))
_ADD_FACT = fact_t.insert().returning(fact_t.c.id)
_SET_INTENT = (
    update(conversation_t)
    .where(conversation_t.c.id.in_(bindparam("ids", expanding=True)))
    .values(intent=bindparam("intent"), updated_at=bindparam("now"),
            version=bumped_if(conversation_t.c.intent.is_distinct_from(bindparam("intent"))))
)
# A "thanks" after an order question must not hide what the conversation is about.
_SET_INTENT_IF_NONE = _SET_INTENT.where(conversation_t.c.intent.is_(None))
_DROP_DRAFTS = delete(draft_t).where(draft_t.c.conversation_id == bindparam("cid"))
_ADD_DRAFT = draft_t.insert()
_RETRY_LATER = (
    update(attempt_t)
    .where(attempt_t.c.message_id == bindparam("mid"))
    .values(locked_until=None, next_attempt_at=bindparam("at"), last_error=bindparam("error"), updated_at=bindparam("now"))
)


def _insert_facts(conn: Connection, q: Question, facts: list[Fact], now: datetime, *, replace_earlier: bool) -> list[int]:
    if replace_earlier:
        conn.execute(_DROP_FACTS, {"mid": q.message_id})  # what an earlier attempt's failure left
    return [
        conn.execute(_ADD_FACT, {
            "conversation_id": q.conversation_id, "message_id": q.message_id, "kind": f.kind, "subject": f.subject[:300],
            "payload": f.payload, "error": f.error, "error_message": f.error_message, "disclosed": f.disclosed,
            "created_at": now,
        }).scalar_one()
        for f in facts
    ]


def _set_intents(conn: Connection, outcomes: list[Outcome], now: datetime) -> None:
    """One statement per intent name for the whole batch."""
    by_name: dict[str, set[int]] = {}
    for out in outcomes:
        if out.intent is not None:
            by_name.setdefault(out.intent.name, set()).add(out.question.conversation_id)
    for name, conversation_ids in by_name.items():
        if name == "other":
            # Conversations that also got a real intent in this batch keep it.
            conversation_ids -= set().union(*(ids for n, ids in by_name.items() if n != "other"))
            if conversation_ids:
                conn.execute(_SET_INTENT_IF_NONE, {"ids": sorted(conversation_ids), "intent": name, "now": now})
        else:
            conn.execute(_SET_INTENT, {"ids": sorted(conversation_ids), "intent": name[:100], "now": now})


def _effects(conn: Connection, out: Outcome, *, escalation_target: str | None, now: datetime) -> None:
    """Facts, the automatic answer or the draft, demand and escalations of one routed message."""
    q = out.question
    fact_ids = _insert_facts(conn, q, out.facts, now, replace_earlier=q.attempts > 1)
    draft, draft_reason = out.draft, out.draft_reason
    if out.answer is not None:
        conv = require_conversation(conn, q.conversation_id)
        about = {"automatic": True, "intent": out.intent.name, "confidence": out.intent.confidence,
                 "language": out.intent.language, "question_message_id": q.message_id, "fact_ids": fact_ids}
        try:
            with conn.begin_nested():
                if out.answer_to is not None:
                    # Only ever the order's own address, which the asker wrote from: never a Reply-To.
                    queue_outbound(conn, conv, out.answer, channel="email", to=out.answer_to,
                                   metadata={**about, "to_order_address": True})
                else:
                    queue_outbound(conn, conv, out.answer, metadata={**about, "unanswered": out.left_open} if out.left_open else about)
                for ref, address, status in out.owner_copies:
                    send_to_order_address(conn, ref, address, status, now=now,
                                          metadata={**about, "order": ref, "asked_in_conversation": q.conversation_id})
        except HubError as exc:
            # No way back to the customer (a form without an email address): the agent decides.
            log.info("automatic answer to message %s not possible: %s", q.message_id, exc)
            conn.execute(update(fact_t).where(fact_t.c.id.in_(fact_ids)).values(disclosed=False))
            draft, draft_reason = out.answer, "no_way_to_answer"
        else:
            values: dict[str, Any] = {"updated_at": now}
            if conv.first_response_at is None:
                values["first_response_at"] = now
            if conv.status == ConversationStatus.open and not out.left_open:
                values["status"] = ConversationStatus.pending  # answered: waiting for the customer
            if len(values) > 1:
                values["version"] = bumped()
            conn.execute(update(conversation_t).where(conversation_t.c.id == conv.id).values(**values))
            if out.left_open:
                # Partly answered: it stays open, in the agents' view, with what is left marked.
                draft, draft_reason = answers.left_open_note(out.left_open), "partly_answered"
                conn.execute(message_t.insert().values(
                    conversation_id=conv.id, direction="system", channel=conv.channel, sent_at=now, created_at=now,
                    text="Answered automatically in part; left for an agent: " + " / ".join(out.left_open),
                    metadata={"event": "answer.partial", "question_message_id": q.message_id, "unanswered": out.left_open},
                ))
    if draft is not None:
        # The newest draft answers the conversation as it stands; older ones are stale.
        conn.execute(_DROP_DRAFTS, {"cid": q.conversation_id})
        conn.execute(_ADD_DRAFT, {
            "conversation_id": q.conversation_id, "message_id": q.message_id, "text": draft,
            "language": answers.language_of(out.intent.language if out.intent else None),
            "reason": (draft_reason or "review")[:64], "created_at": now,
        })
    day = q.created_at.astimezone(UTC).date()
    for sku, name, unavailable in out.demand:
        demand.count(conn, day, sku, unavailable=unavailable, product_name=name)
    if escalation_target is not None:
        for dedupe_key, reason in out.escalations:
            create_escalation(conn, q.conversation_id, reason, target=escalation_target,
                              created_by="rule:late_order_key_customer", dedupe_key=dedupe_key)


def record(conn: Connection, outcomes: list[Outcome], *, escalation_target: str | None,
           now: datetime | None = None) -> list[Outcome]:
    """Everything routing decided for these messages, in the caller's transaction. Returns the
    outcomes recorded: a message already routed (by another worker whose lease we outlived) is
    left out, with nothing written for it."""
    now = now or utcnow()
    if not outcomes:
        return []
    ids = [out.question.message_id for out in outcomes]
    mine = set(conn.execute(_MARK_ROUTED, {"ids": ids, "now": now}).scalars())
    recorded = [out for out in outcomes if out.question.message_id in mine]
    if not recorded:
        return []
    conn.execute(_END_ATTEMPTS, {"ids": sorted(mine)})
    _set_intents(conn, recorded, now)
    for out in recorded:
        if out.facts or out.answer or out.draft or out.demand or out.escalations or out.question.attempts > 1:
            _effects(conn, out, escalation_target=escalation_target, now=now)
    return recorded


def record_retry(conn: Connection, out: Outcome, policy: RetryPolicy, *, now: datetime | None = None) -> bool:
    """The back end was down (or routing failed): show the failure, schedule the next attempt.
    Returns False when attempts are exhausted and the message was routed as it stands."""
    q, now = out.question, now or utcnow()
    if q.attempts >= policy.max_attempts:
        # Given up: the failure stays in the facts and the question with the agents.
        out.draft, out.answer = None, None
        record(conn, [out], escalation_target=None, now=now)
        return False
    error = str(out.failure) if out.failure is not None else out.error or "routing failed"
    retry_after = getattr(out.failure, "retry_after", None)
    delay = max(retry_after or 0.0, policy.backoff(q.attempts))
    conn.execute(_RETRY_LATER, {"mid": q.message_id, "at": now + timedelta(seconds=delay), "error": error[:2000], "now": now})
    _insert_facts(conn, q, out.facts, now, replace_earlier=True)
    _set_intents(conn, [out], now)
    return True


def _count(counts: dict[str, int], recorded: list[Outcome]) -> None:
    for out in recorded:
        counts["routed"] += 1
        counts["answered"] += out.answer is not None
        counts["drafted"] += out.draft is not None
        counts["escalated"] += len(out.escalations)


def record_all(engine: Engine, outcomes: list[Outcome], *, policy: RetryPolicy, escalation_target: str | None) -> dict[str, int]:
    """One transaction for a batch. Optimistic: the whole batch at once; if anything in it fails,
    it is redone with a savepoint per message, so a bad one never spoils the others."""
    counts = {"answered": 0, "drafted": 0, "retry": 0, "routed": 0, "escalated": 0}
    done = [out for out in outcomes if out.failure is None and out.error is None]
    failed = [out for out in outcomes if out.failure is not None or out.error is not None]
    with write_tx(engine) as conn:
        try:
            with conn.begin_nested():
                recorded = record(conn, done, escalation_target=escalation_target)
        except Exception:
            log.warning("recording a routing batch failed; recording it message by message", exc_info=True)
            recorded = []
            for out in done:
                try:
                    with conn.begin_nested():
                        recorded += record(conn, [out], escalation_target=escalation_target)
                except Exception:
                    log.exception("recording the routing of message %s failed; it will be retried", out.question.message_id)
        _count(counts, recorded)
        for out in failed:
            try:
                with conn.begin_nested():
                    if record_retry(conn, out, policy):
                        counts["retry"] += 1
                    else:
                        counts["routed"] += 1
            except Exception:
                log.exception("recording the failure of message %s failed; it will be retried", out.question.message_id)
    return counts


# --- the worker ---------------------------------------------------------------------------------


class RoutingWorker(PollingWorker):
    """Claims unrouted inbound messages in batches, routes them, records the outcomes. Woken by
    the ingest listener; polls as a safety net (and for retries that fall due).

    Routing shares the process (and, on SQLite, the write lock) with ingest, which must not slow
    down: while messages keep arriving, routing takes at most `routing_busy_share` of the time
    (it sleeps off any excess) and catches up at full speed once the burst is over. A quiet hub
    routes each message as soon as it is stored."""

    def __init__(
        self,
        engine: Engine,
        services: ScmServices,
        scm,
        *,
        escalation_target: str | None = None,
        on_queued: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__()
        self.engine = engine
        self.services = services
        self.scm = scm
        self.escalation_target = escalation_target if scm.escalate_late_orders_of_key_customers else None
        self.on_queued = on_queued  # wakes the outbox worker when answers or escalations were queued
        self.poll_seconds = scm.routing_poll_seconds
        self.policy = RetryPolicy(
            max_attempts=scm.routing_max_attempts,
            base_seconds=scm.routing_retry_base_seconds,
            max_seconds=scm.routing_retry_max_seconds,
            lease_seconds=scm.routing_lease_seconds,
        )
        self.totals = {"answered": 0, "drafted": 0, "retry": 0, "routed": 0, "escalated": 0}
        self._clock = clock
        # Its own meter (fed by wake(), i.e. by every stored message) and pacer: hub/runtime/pacing.py.
        self._meter = IngestMeter(clock)
        self._pacer = Pacer(self._meter, share=scm.routing_busy_share,
                            busy_above_per_second=scm.routing_busy_above_per_second, clock=clock)

    def wake(self) -> None:
        """A message was stored (the ingest listener): route it now, unless ingest is busy."""
        self._meter.arrived()
        super().wake()

    def ingest_busy(self) -> bool:
        """Messages arriving faster than routing_busy_above_per_second: a burst, when ingest needs
        the process. Below it the hub is far from its ingest limit and routing runs at once."""
        return self._meter.per_second() > self.scm.routing_busy_above_per_second

    async def run(self) -> None:
        try:
            # The classifier and the catalogue before the first message, not during it.
            await self.services.warm_up()
            await self.services.refresh_catalogue(force=True)
        except Exception:
            log.exception("warming up intent detection failed; routing goes on and retries the catalogue")
        await super().run()

    async def run_once(self) -> int:
        started = self._clock()
        routed = await self.route_batch()
        if routed:
            pause = self.pause_after(started, self._clock())
            if pause > 0:
                await asyncio.sleep(pause)
        return routed

    def pause_after(self, started: float, ended: float) -> float:
        """Seconds to yield after a pass so that, during a burst, routing's share of the last
        seconds stays under routing_busy_share; 0 when ingest is not busy."""
        return self._pacer.pause_after(started, ended)

    async def route_batch(self) -> int:
        await self.services.refresh_catalogue()

        def claim_and_load() -> list[Question]:
            claimed = claim(self.engine, limit=self.scm.routing_batch_size, lease_seconds=self.policy.lease_seconds)
            return load_questions(self.engine, claimed) if claimed else []

        questions = await asyncio.to_thread(claim_and_load)
        if not questions:
            return 0
        try:
            intents = await asyncio.to_thread(detect_all, self.services, questions)
        except Exception:
            log.exception("intent detection failed; routing the batch one by one")
            intents = [None] * len(questions)
        outcomes = []
        for q, intent in zip(questions, intents, strict=True):
            try:
                outcomes.append(await route(q, self.services, self.scm, intent=intent))
            except Exception as exc:  # a detector or adapter bug: keep the message, retry later
                log.exception("routing message %s failed", q.message_id)
                outcomes.append(Outcome(q, error=f"{type(exc).__name__}: {exc}"))
        counts = await asyncio.to_thread(
            record_all, self.engine, outcomes, policy=self.policy, escalation_target=self.escalation_target
        )
        for key, value in counts.items():
            self.totals[key] += value
        if (counts["answered"] or counts["escalated"]) and self.on_queued is not None:
            self.on_queued()
        return len(questions)


# --- what agents see ------------------------------------------------------------------------------


def conversation_facts(engine: Engine, conversation_id: int) -> dict[str, Any]:
    """Facts, drafts, automatic answers and escalations of a conversation, for the agent (who sees
    everything; `disclosed` says what the customer was told)."""
    from hub.scm.escalation import conversation_escalations

    with read_tx(engine) as conn:
        conv = require_conversation(conn, conversation_id)
        facts = conn.execute(select(fact_t).where(fact_t.c.conversation_id == conversation_id).order_by(fact_t.c.id)).all()
        drafts = conn.execute(select(draft_t).where(draft_t.c.conversation_id == conversation_id).order_by(draft_t.c.id)).all()
        outbound = conn.execute(
            select(message_t.c.id, message_t.c.metadata, message_t.c.created_at)
            .where(message_t.c.conversation_id == conversation_id, message_t.c.direction == "outbound")
            .order_by(message_t.c.id)
        ).all()
        escalations = conversation_escalations(conn, conversation_id)
    return {
        "conversation_id": conv.id,
        "intent": conv.intent,
        "facts": [
            {"id": f.id, "message_id": f.message_id, "kind": f.kind, "subject": f.subject, "payload": f.payload,
             "error": f.error, "error_message": f.error_message, "disclosed": f.disclosed, "created_at": iso(f.created_at)}
            for f in facts
        ],
        "drafts": [
            {"id": d.id, "message_id": d.message_id, "text": d.text, "language": d.language, "reason": d.reason,
             "created_at": iso(d.created_at)}
            for d in drafts
        ],
        "automatic_answers": [
            {"message_id": m.id, "question_message_id": (m.metadata or {}).get("question_message_id"),
             "intent": (m.metadata or {}).get("intent"), "confidence": (m.metadata or {}).get("confidence"),
             "created_at": iso(m.created_at)}
            for m in outbound
            if (m.metadata or {}).get("automatic")
        ],
        "escalations": escalations,
    }
