"""Escalation to the back office: an agent or a rule hands a conversation over, the hub delivers
the case through the outbox (a signed webhook, an email, or the back end's own escalate()), and
the back office reports progress, which shows in the conversation's timeline.

The webhook is signed like this (copy verify_signature() into the receiving side):

    X-Servicehub-Timestamp: 1767225600                 (Unix seconds when it was signed)
    X-Servicehub-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

The receiver recomputes the HMAC over the raw body it received and refuses a timestamp older (or
newer) than its tolerance, so a captured request cannot be replayed later. A retried delivery is
signed again with a fresh timestamp; X-Servicehub-Delivery stays the same for one escalation, so
the receiver can drop a case it already took.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import aiohttp
from sqlalchemy import Connection, Engine, func, select, update

from adapters.base import BackendError, BackendUnavailable, CustomerRef, EscalationCase
from hub.contract import clock
from hub.contract.delivery import PermanentFailure, TemporaryFailure
from hub.contract.errors import NotFound, RejectedInput
from hub.contract.i18n import N_
from hub.contract.messages import OutboundMessage
from hub.contract.principal import Principal
from hub.contract.timefmt import iso
from hub.conversations import require_conversation
from hub.outbox import delivery_state, enqueue
from hub.store.audit import audit
from hub.store.db import read_tx, write_tx
from hub.store.models import (
    Conversation,
    Customer,
    Direction,
    Escalation,
    EscalationEvent,
    EscalationStatus,
    Identity,
    Message,
    Outbox,
    OutboxStatus,
    ScmFact,
    utcnow,
)
from hub.store.sql import insert_ignoring_conflict

log = logging.getLogger(__name__)

escalation_t = Escalation.__table__
event_t = EscalationEvent.__table__
conversation_t = Conversation.__table__
customer_t = Customer.__table__
identity_t = Identity.__table__
message_t = Message.__table__
outbox_t = Outbox.__table__
fact_t = ScmFact.__table__

TIMESTAMP_HEADER = "X-Servicehub-Timestamp"
SIGNATURE_HEADER = "X-Servicehub-Signature"
EVENT_HEADER = "X-Servicehub-Event"
DELIVERY_HEADER = "X-Servicehub-Delivery"
OUTBOX_KIND = "escalation"
TARGETS = ("webhook", "email", "backend")
# What the back office may report; "queued", "sent" and "failed" are the hub's delivery states.
REPORTED_STATUSES = ("acknowledged", "in_progress", "resolved")
MAX_REASON = 2000


# --- signing ----------------------------------------------------------------------------------


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """The X-Servicehub-Signature value for a body sent at `timestamp` (Unix seconds)."""
    mac = hmac.new(_key(secret), f"{int(timestamp)}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_signature(secret: str | bytes, timestamp: str | int, body: bytes, signature: str, *,
                     tolerance: float = 300, now: float | None = None) -> bool:
    """True when `signature` (the X-Servicehub-Signature header, "v1=<hex>"; several may be given
    comma-separated while a secret is rotated) is the HMAC-SHA256 of "<timestamp>.<body>" under
    `secret`, and `timestamp` (X-Servicehub-Timestamp) is within `tolerance` seconds of now.
    Needs only the standard library (hashlib, hmac, time): copy it into the receiving system.
    Whatever the headers hold (they come from whoever calls the receiver), the answer is True or
    False, never an exception."""
    stamp = str(timestamp).strip()
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):  # int() takes "１２", "1_0", "-5"
        return False
    sent = int(stamp)
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False  # too old (a replay) or from a clock far ahead
    expected = hmac.new(secret.encode() if isinstance(secret, str) else secret,
                        f"{sent}.".encode() + body, hashlib.sha256).hexdigest().encode()
    if not isinstance(signature, str):
        return False
    for part in signature.split(",")[:8]:
        scheme, _, value = part.strip().partition("=")
        # As bytes: compare_digest raises on a str with non-ASCII characters.
        if scheme == "v1" and hmac.compare_digest(value.strip().encode("utf-8", "replace"), expected):
            return True
    return False


# --- creating and reading escalations -----------------------------------------------------------


def create_escalation(
    conn: Connection,
    conversation_id: int,
    reason: str,
    *,
    target: str,
    created_by: str,
    dedupe_key: str | None = None,
) -> int | None:
    """Record an escalation, queue its delivery and note it in the timeline, in the caller's
    transaction. A rule's dedupe_key escalates one situation once: None if it was before."""
    if target not in TARGETS:
        raise RejectedInput(N_("%(name)s must be one of: %(choices)s"), params={"name": "target", "choices": ", ".join(TARGETS)})
    reason = reason.strip()[:MAX_REASON]
    if not reason:
        raise RejectedInput(N_("an escalation needs a reason"))
    conv = require_conversation(conn, conversation_id)
    now = utcnow()
    escalation_id = insert_ignoring_conflict(
        conn,
        escalation_t,
        {
            "conversation_id": conv.id,
            "reason": reason,
            "status": EscalationStatus.queued,
            "target": target,
            "created_by": created_by[:200],
            "dedupe_key": dedupe_key,
            "created_at": now,
            "updated_at": now,
        },
    )
    if escalation_id is None:
        return None
    enqueue(conn, kind=OUTBOX_KIND, payload={"escalation_id": escalation_id}, idempotency_key=f"escalation:{escalation_id}")
    _timeline(conn, conv, f"Escalated to the back office ({target}): {reason}",
              {"escalation_id": escalation_id, "event": "escalation.created", "by": created_by})
    audit(conn, created_by, "conversation.escalate", f"conversation:{conv.id}", escalation=escalation_id, via=target)
    return escalation_id


def _timeline(conn: Connection, conv, text: str, metadata: dict) -> int:
    """A system message: shown in the conversation, never sent."""
    now = utcnow()
    return conn.execute(
        message_t.insert()
        .values(conversation_id=conv.id, direction=Direction.system, channel=conv.channel, text=text,
                sent_at=now, created_at=now, metadata=metadata)
        .returning(message_t.c.id)
    ).scalar_one()


def escalate(engine: Engine, conversation_id: int, actor: Principal, reason: str, *, target: str) -> dict[str, Any]:
    """An agent escalates a conversation (POST /api/v1/conversations/{id}/escalations)."""
    with write_tx(engine) as conn:
        escalation_id = create_escalation(conn, conversation_id, reason, target=target, created_by=actor.actor)
    return get_escalation(engine, escalation_id)


def _delivery(row) -> dict[str, Any] | None:
    if row is None:
        return None
    return delivery_state(row.status, attempts=row.attempts, last_error=row.last_error,
                          next_attempt_at=row.next_attempt_at, sent_at=row.sent_at)


def _escalation_dict(row, outbox_row, events) -> dict[str, Any]:
    status = row.status
    if status == EscalationStatus.queued and outbox_row is not None and outbox_row.status == OutboxStatus.dead:
        status = EscalationStatus.failed  # the outbox gave up: say so, with its last error
    return {
        "id": row.id,
        "conversation_id": row.conversation_id,
        "reason": row.reason,
        "status": status,
        "target": row.target,
        "external_reference": row.external_reference,
        "external_url": row.external_url,
        "created_by": row.created_by,
        "last_error": row.last_error or (outbox_row.last_error if outbox_row is not None else None),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "sent_at": iso(row.sent_at),
        "resolved_at": iso(row.resolved_at),
        "delivery": _delivery(outbox_row),
        "events": [
            {
                "id": e.id,
                "status": e.status,
                "comment": e.comment,
                "external_reference": e.external_reference,
                "event_key": e.event_key,
                "message_id": e.message_id,
                "actor": e.actor,
                "created_at": iso(e.created_at),
            }
            for e in events
        ],
    }


def get_escalation(engine: Engine, escalation_id: int) -> dict[str, Any]:
    with read_tx(engine) as conn:
        row = conn.execute(select(escalation_t).where(escalation_t.c.id == escalation_id)).first()
        if row is None:
            raise NotFound(N_("escalation %(id)s does not exist"), params={"id": escalation_id})
        outbox_row = conn.execute(
            select(outbox_t).where(outbox_t.c.idempotency_key == f"escalation:{escalation_id}")
        ).first()
        events = conn.execute(
            select(event_t).where(event_t.c.escalation_id == escalation_id).order_by(event_t.c.id)
        ).all()
    return _escalation_dict(row, outbox_row, events)


def conversation_escalations(conn: Connection, conversation_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(escalation_t).where(escalation_t.c.conversation_id == conversation_id).order_by(escalation_t.c.id)
    ).all()
    out = []
    for row in rows:
        outbox_row = conn.execute(select(outbox_t).where(outbox_t.c.idempotency_key == f"escalation:{row.id}")).first()
        out.append(_escalation_dict(row, outbox_row, []))
    return out


def record_event(
    engine: Engine,
    escalation_id: int,
    actor: Principal,
    *,
    status: str | None = None,
    comment: str | None = None,
    external_reference: str | None = None,
    event_key: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """The back office reports progress: stored as an event and a system message in the
    conversation. Returns (escalation, created); a repeated event_key records nothing new."""
    if status is not None and status not in REPORTED_STATUSES:
        raise RejectedInput(f"status must be one of: {', '.join(REPORTED_STATUSES)}")
    comment = (comment or "").strip() or None
    if status is None and comment is None and external_reference is None:
        raise RejectedInput("an event needs a status, a comment or an external_reference")
    now = utcnow()
    with write_tx(engine) as conn:
        row = conn.execute(select(escalation_t).where(escalation_t.c.id == escalation_id)).first()
        if row is None:
            raise NotFound(N_("escalation %(id)s does not exist"), params={"id": escalation_id})
        event_id = insert_ignoring_conflict(
            conn,
            event_t,
            {
                "escalation_id": escalation_id,
                "status": status,
                "comment": comment,
                "external_reference": external_reference,
                "event_key": event_key,
                "actor": actor.actor,
                "created_at": now,
            },
        )
        if event_id is None:
            created = False
        else:
            created = True
            parts = [f"Back office on escalation #{escalation_id}: {(status or 'comment').replace('_', ' ')}"]
            if external_reference:
                parts.append(f"(reference {external_reference})")
            text = " ".join(parts) + (f" — {comment}" if comment else "")
            conv = require_conversation(conn, row.conversation_id)
            message_id = _timeline(conn, conv, text, {
                "escalation_id": escalation_id, "event": "escalation.event", "status": status,
                "comment": comment, "external_reference": external_reference, "by": actor.actor,
            })
            conn.execute(update(event_t).where(event_t.c.id == event_id).values(message_id=message_id))
            values: dict[str, Any] = {"updated_at": now}
            if status is not None:
                values["status"] = status
                values["resolved_at"] = now if status == EscalationStatus.resolved else None
            if external_reference:
                values["external_reference"] = external_reference[:200]
            conn.execute(update(escalation_t).where(escalation_t.c.id == escalation_id).values(**values))
            audit(conn, actor.actor, "escalation.event", f"escalation:{escalation_id}", status=status)
    return get_escalation(engine, escalation_id), created


# --- the case the back office gets ------------------------------------------------------------


def load_case(engine: Engine, escalation_id: int, public_url: str) -> tuple[Any, EscalationCase, dict[str, Any]]:
    """(escalation row, the EscalationCase for a back end, the webhook's JSON document)."""
    with read_tx(engine) as conn:
        esc = conn.execute(select(escalation_t).where(escalation_t.c.id == escalation_id)).first()
        if esc is None:
            raise PermanentFailure(f"escalation {escalation_id} does not exist")
        conv = conn.execute(
            select(conversation_t, customer_t.c.name.label("customer_name"), customer_t.c.segment)
            .join(customer_t, customer_t.c.id == conversation_t.c.customer_id)
            .where(conversation_t.c.id == esc.conversation_id)
        ).first()
        identities = conn.execute(
            select(identity_t.c.kind, identity_t.c.address, identity_t.c.verified)
            .where(identity_t.c.customer_id == conv.customer_id).order_by(identity_t.c.id)
        ).all()
        last_question = conn.execute(
            select(message_t.c.text).where(message_t.c.conversation_id == conv.id, message_t.c.direction == Direction.inbound)
            .order_by(message_t.c.id.desc()).limit(1)
        ).scalar()
        facts = conn.execute(
            select(fact_t).where(fact_t.c.conversation_id == conv.id).order_by(fact_t.c.id.desc()).limit(20)
        ).all()
    base = public_url.rstrip("/")
    customer = CustomerRef(
        customer_id=conv.customer_id,
        emails=tuple(i.address for i in identities if i.kind == "email"),
        phones=tuple(i.address for i in identities if i.kind == "phone"),
        name=conv.customer_name,
        segment=conv.segment,
    )
    order_refs = tuple(dict.fromkeys(f.subject for f in facts if f.kind == "order"))
    fact_list = [
        {"kind": f.kind, "subject": f.subject, "payload": f.payload, "error": f.error, "created_at": iso(f.created_at)}
        for f in reversed(facts)
    ]
    summary = (f"{conv.subject}\n\n" if conv.subject else "") + (last_question or "")[:4000]
    priority = "high" if conv.segment == "key" or conv.priority in ("high", "urgent") else "normal"
    url = f"{base}/api/v1/conversations/{conv.id}"
    case = EscalationCase(
        case_id=f"servicehub-escalation-{esc.id}",
        conversation_id=conv.id,
        reason=esc.reason,
        summary=summary,
        customer=customer,
        order_refs=order_refs,
        priority=priority,
        facts={"facts": fact_list},
        url=url,
    )
    document = {
        "event": "escalation.created",
        "escalation_id": esc.id,
        "case_id": case.case_id,
        "conversation_id": conv.id,
        "reason": esc.reason,
        "summary": summary,
        "priority": priority,
        "customer": {
            "id": conv.customer_id,
            "name": conv.customer_name,
            "segment": conv.segment,
            "identities": [{"kind": i.kind, "address": i.address, "verified": i.verified} for i in identities],
        },
        "order_refs": list(order_refs),
        "facts": fact_list,
        "conversation_url": url,
        "events_url": f"{base}/api/v1/escalations/{esc.id}/events",
        "created_at": iso(esc.created_at),
    }
    return esc, case, document


def mark_sent(engine: Engine, escalation_id: int, reference: str | None = None, url: str | None = None) -> None:
    now = utcnow()
    values: dict[str, Any] = {"sent_at": now, "updated_at": now, "last_error": None}
    # A reference the back office already gave in an event (it may report progress before its
    # answer to the webhook arrives) is kept: the receipt fills in only what is missing.
    if reference:
        values["external_reference"] = func.coalesce(escalation_t.c.external_reference, str(reference)[:200])
    if url:
        values["external_url"] = func.coalesce(escalation_t.c.external_url, str(url)[:1000])
    with write_tx(engine) as conn:
        conn.execute(update(escalation_t).where(escalation_t.c.id == escalation_id).values(**values))
        # Progress the back office already reported (it may answer the webhook after acknowledging) wins.
        conn.execute(
            update(escalation_t)
            .where(escalation_t.c.id == escalation_id, escalation_t.c.status.in_([EscalationStatus.queued, EscalationStatus.failed]))
            .values(status=EscalationStatus.sent)
        )


def mark_failed(engine: Engine, escalation_id: int, error: str) -> None:
    """Delivery refused for good: the escalation shows failed and the timeline says why."""
    with write_tx(engine) as conn:
        row = conn.execute(select(escalation_t).where(escalation_t.c.id == escalation_id)).first()
        if row is None:
            return
        conn.execute(
            update(escalation_t).where(escalation_t.c.id == escalation_id)
            .values(status=EscalationStatus.failed, last_error=error[:2000], updated_at=utcnow())
        )
        conv = require_conversation(conn, row.conversation_id)
        _timeline(conn, conv, f"Escalation #{escalation_id} could not be delivered: {error[:500]}",
                  {"escalation_id": escalation_id, "event": "escalation.failed"})


# --- delivery (the outbox's deliverer for kind "escalation") ------------------------------------


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, (parsedate_to_datetime(value) - utcnow()).total_seconds())
        except (TypeError, ValueError):
            return None


class EscalationDelivery:
    """Delivers an escalation to its target. Registered as OutboxWorker.deliverers["escalation"]:
    TemporaryFailure is retried with backoff, PermanentFailure marks the escalation failed."""

    def __init__(self, engine: Engine, settings, *, registry=None, backend=None, session: aiohttp.ClientSession | None = None):
        self.engine = engine
        self.settings = settings  # the hub's Settings (public_url, scm)
        self.registry = registry
        self.backend = backend
        self.session = session

    async def __call__(self, payload: dict) -> str | None:
        escalation_id = int(payload["escalation_id"])
        esc, case, document = await asyncio.to_thread(load_case, self.engine, escalation_id, self.settings.public_url)
        try:
            if esc.target == "webhook":
                reference, url = await self._webhook(esc.id, document)
            elif esc.target == "email":
                reference, url = await self._email(esc, case, document), None
            elif esc.target == "backend":
                reference, url = await self._backend(case)
            else:
                raise PermanentFailure(f"unknown escalation target {esc.target!r}")
        except PermanentFailure as exc:
            await asyncio.to_thread(mark_failed, self.engine, escalation_id, str(exc))
            raise
        await asyncio.to_thread(mark_sent, self.engine, escalation_id, reference, url)
        return reference

    async def _webhook(self, escalation_id: int, document: dict) -> tuple[str | None, str | None]:
        scm = self.settings.scm
        if not scm.backoffice_url or scm.backoffice_secret is None:
            raise PermanentFailure("no back-office webhook is configured (SERVICEHUB_SCM__BACKOFFICE_URL and _SECRET)")
        if self.session is None:
            raise TemporaryFailure("the hub's HTTP client is not running")
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = int(clock.timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "servicehub-escalation/1",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(scm.backoffice_secret.get_secret_value(), timestamp, body),
            EVENT_HEADER: "escalation.created",
            DELIVERY_HEADER: f"escalation:{escalation_id}",
        }
        try:
            async with self.session.post(
                scm.backoffice_url, data=body, headers=headers, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=scm.backoffice_timeout_seconds),
            ) as resp:
                text = await resp.text(errors="replace")
                status, retry_after = resp.status, resp.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise TemporaryFailure(f"back office unreachable: {type(exc).__name__}: {exc}") from None
        if status in (408, 425, 429) or status >= 500:
            raise TemporaryFailure(f"back office answered {status}: {text[:200]}", retry_after=_retry_after(retry_after))
        if status >= 300:
            raise PermanentFailure(f"back office refused the escalation with {status}: {text[:300]}")
        try:
            answer = json.loads(text) if text.strip() else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        reference = answer.get("reference") or answer.get("id") or answer.get("case")
        return (str(reference) if reference is not None else None), answer.get("url")

    async def _email(self, esc, case: EscalationCase, document: dict) -> str | None:
        address = self.settings.scm.escalation_email
        if not address:
            raise PermanentFailure("no escalation email address is configured (SERVICEHUB_SCM__ESCALATION_EMAIL)")
        if self.registry is None:
            raise TemporaryFailure("the channels are not running")
        lines = [
            f"Escalation #{esc.id} from the customer service hub",
            "",
            f"Reason: {esc.reason}",
            f"Priority: {case.priority}",
            f"Customer: {case.customer.name or '-'} ({', '.join(case.customer.emails + case.customer.phones) or 'no address'})",
            f"Orders: {', '.join(case.order_refs) or '-'}",
            f"Conversation: {case.url}",
            "",
            case.summary,
            "",
            f"Report progress with POST {document['events_url']} (back-office token).",
            "",
            "Facts:",
            json.dumps(document["facts"], ensure_ascii=False, indent=2),
        ]
        message = OutboundMessage(
            conversation_id=esc.conversation_id,
            channel="email",
            recipient=address,
            text="\n".join(lines),
            subject=f"[Escalation #{esc.id}] {esc.reason[:150]}",
            idempotency_key=f"escalation:{esc.id}",
        )
        delivery = await self.registry.get("email").send(message)
        return None if delivery is None else delivery.external_id

    async def _backend(self, case: EscalationCase) -> tuple[str | None, str | None]:
        from adapters.base import EscalationNotSupported

        if self.backend is None:
            raise TemporaryFailure("the SCM back end is not running")
        try:
            receipt = await self.backend.escalate(case)
        except BackendUnavailable as exc:
            raise TemporaryFailure(f"back end unavailable: {exc}", retry_after=exc.retry_after) from None
        except EscalationNotSupported as exc:
            raise PermanentFailure(f"the back end takes no cases ({exc}); configure SERVICEHUB_SCM__BACKOFFICE_URL") from None
        except BackendError as exc:
            raise PermanentFailure(f"the back end refused the case: {exc}") from None
        return receipt.reference, receipt.url


def escalation_target(settings, requested: str | None = None) -> str:
    """The target for a new escalation: the one asked for, or the configured one."""
    target = requested or settings.scm.effective_escalation_target
    if target not in TARGETS:
        raise RejectedInput(N_("%(name)s must be one of: %(choices)s"), params={"name": "target", "choices": ", ".join(TARGETS)})
    if target == "webhook" and not settings.scm.backoffice_url:
        raise RejectedInput(N_("no back-office webhook is configured; escalate by email or to the back end"))
    if target == "email" and not settings.scm.escalation_email:
        raise RejectedInput(N_("no escalation email address is configured"))
    return target


__all__ = [
    "EscalationDelivery", "create_escalation", "escalate", "escalation_target", "get_escalation", "record_event",
    "sign", "verify_signature",
]
