"""Service levels: which policy applies, the timers' due times, warnings and breaches, and the
worker that keeps them (plus automatic assignment, hub/assignment/rules.py) off the ingest path.

Timers. A conversation's cycle starts when it opens (created_at) or is reopened (a resolved or
closed conversation open again). The first-response timer runs from created_at until the first
agent reply (conversation.first_response_at); the resolution timer runs from the cycle's start
until resolve. Both count business time of the policy's calendar. Pending (waiting for the
customer) does NOT pause the resolution timer: the target is about the customer's total wait,
and a pause would let a conversation be parked to dodge the clock. conversation.sla_due_at is
the earliest due time of the timers still running (NULL when none runs); the inbox's "due soon"
view sorts by it.

The worker (SlaWorker) polls: (1) conversations (or their customers: a segment change) changed
since its watermark get their policy and due times recomputed; (2) new open unassigned ones are
assigned; (3) clocks whose next check fell due fire their warning / breach once: each is a row in
sla_event (unique), inserted in the same transaction as its effects (a system message in the
conversation, which the inbox's live stream shows; optionally an escalation and a reassignment),
so a second hub process or a restart never acts twice. Recomputing is idempotent: two processes
doing it at once write the same values.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, union, update

from hub.assignment import assign, pick_agent, sticky_agent
from hub.contract.errors import ConfigError
from hub.runtime.pacing import Pacer
from hub.sla.business_hours import Calendar, add_business_time, business_time_between, make_calendar
from hub.store.db import read_tx, write_tx
from hub.store.models import Conversation, ConversationStatus, Customer, Direction, Message, SlaClock, SlaEvent, utcnow
from hub.store.sql import insert_ignoring_conflict
from hub.store.state import load_state, save_state
from hub.store.workqueue import PollingWorker

log = logging.getLogger(__name__)

conversation_t = Conversation.__table__
customer_t = Customer.__table__
message_t = Message.__table__
clock_t = SlaClock.__table__
event_t = SlaEvent.__table__

RUNNING = (ConversationStatus.open, ConversationStatus.pending)
# Changes committed a little after the worker read (a transaction that took a while) are still
# seen: each pass rereads this much before its watermark. Recomputing twice is harmless, and a
# pass writes only what changed.
WATERMARK_SLACK = timedelta(seconds=15)
STATE = ("sla", "watermark")


@dataclass(frozen=True)
class Policy:
    name: str
    priority: str | None
    segment: str | None
    first_response: timedelta
    resolution: timedelta
    calendar: Calendar


@dataclass(frozen=True)
class Rules:
    """SlaSettings, checked and turned into calendars once."""

    policies: tuple[Policy, ...]
    warning_ratio: float
    assignment: str = "load"
    key_customer_team: str | None = None
    escalate_on_breach: bool = False
    reassign_on_breach: bool = False
    escalation_target: str | None = None
    version: str = ""  # a digest of the settings the rules came from

    def policy_for(self, priority: str | None, segment: str | None) -> Policy | None:
        """The strictest matching policy (shortest resolution, then first-response target)."""
        matching = [p for p in self.policies
                    if (p.priority is None or p.priority == priority) and (p.segment is None or p.segment == segment)]
        if not matching:
            return None
        return min(matching, key=lambda p: (p.resolution, p.first_response))

    def by_name(self, name: str | None) -> Policy | None:
        return next((p for p in self.policies if p.name == name), None)


def build_rules(sla, *, escalation_target: str | None = None) -> Rules:
    """From SlaSettings; a ConfigError names what is wrong."""
    try:
        calendars = {
            name: make_calendar(c.timezone, c.hours, c.holidays, c.holiday_country) for name, c in sla.calendars.items()
        }
    except ValueError as exc:
        raise ConfigError(f"sla.calendars: {exc}") from None
    policies = []
    for p in sla.policies:
        if p.calendar not in calendars:
            raise ConfigError(f"sla.policies: policy {p.name!r} names calendar {p.calendar!r}, which is not defined")
        policies.append(Policy(p.name, p.priority, p.segment, timedelta(minutes=p.first_response_minutes),
                               timedelta(minutes=p.resolution_minutes), calendars[p.calendar]))
    version = hashlib.sha256(sla.model_dump_json(include={"calendars", "policies", "warning_ratio"}).encode()).hexdigest()[:16]
    return Rules(tuple(policies), sla.warning_ratio, sla.assignment, sla.key_customer_team,
                 sla.escalate_on_breach, sla.reassign_on_breach, escalation_target, version)


# --- timers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timers:
    policy: str | None
    started_at: datetime
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    first_response_warn_at: datetime | None
    resolution_warn_at: datetime | None
    sla_due_at: datetime | None  # the earliest due time of a running timer
    next_check_at: datetime | None


def compute(conv, segment: str | None, started_at: datetime, rules: Rules, now: datetime) -> Timers:
    """The timers of one conversation, given when its cycle started."""
    policy = rules.policy_for(conv.priority, segment)
    if policy is None:
        return Timers(None, started_at, None, None, None, None, None, None)
    cal = policy.calendar
    fr_due = add_business_time(conv.created_at, policy.first_response, cal)
    res_due = add_business_time(started_at, policy.resolution, cal)
    fr_warn = add_business_time(conv.created_at, policy.first_response * rules.warning_ratio, cal)
    res_warn = add_business_time(started_at, policy.resolution * rules.warning_ratio, cal)
    active = conv.status in RUNNING
    running: list[tuple[datetime, datetime]] = []  # (warn, due) of the timers still running
    if active and conv.first_response_at is None:
        running.append((fr_warn, fr_due))
    if active and conv.resolved_at is None:
        running.append((res_warn, res_due))
    due = min((d for _, d in running), default=None)
    # Look again at the first warning or due time still ahead, or at once if one has passed
    # (firing is idempotent: what was fired before is not fired again).
    points = [p for pair in running for p in pair]
    next_check = min(points, default=None)
    if next_check is not None and next_check < now:
        next_check = now
    return Timers(policy.name, started_at, fr_due, res_due, fr_warn, res_warn, due, next_check)


def _changed_since(since: datetime, after_id: int, limit: int):
    # Two indexed ranges (conversation.updated_at, customer.updated_at), not one OR across a join.
    changed = union(
        select(conversation_t.c.id).where(conversation_t.c.updated_at >= since),
        select(conversation_t.c.id)
        .join(customer_t, customer_t.c.id == conversation_t.c.customer_id)
        .where(customer_t.c.updated_at >= since),
    ).subquery()
    return (
        select(conversation_t, customer_t.c.segment)
        .join(customer_t, customer_t.c.id == conversation_t.c.customer_id)
        .where(conversation_t.c.id.in_(select(changed.c.id)), conversation_t.c.id > after_id)
        .order_by(conversation_t.c.id)
        .limit(limit)
    )


# Batched writes (executemany): a pass over thousands of changed conversations stays cheap.
_UPDATE_CONVERSATION = (
    update(conversation_t).where(conversation_t.c.id == bindparam("_id"))
    .values(sla_policy=bindparam("sla_policy"), first_response_due_at=bindparam("first_response_due_at"),
            resolution_due_at=bindparam("resolution_due_at"), sla_due_at=bindparam("sla_due_at"))
)
_CLOCK_COLUMNS = ("started_at", "status_seen", "first_response_warn_at", "resolution_warn_at", "next_check_at",
                  "assign_done", "fingerprint", "updated_at")
_UPDATE_CLOCK = update(clock_t).where(clock_t.c.id == bindparam("_id")).values(
    **{c: bindparam(c) for c in _CLOCK_COLUMNS})


@dataclass
class _Writes:
    conversations: list[dict] = field(default_factory=list)
    clocks: list[dict] = field(default_factory=list)

    def flush(self, conn: Connection) -> None:
        if self.conversations:
            conn.execute(_UPDATE_CONVERSATION, self.conversations)
        if self.clocks:
            conn.execute(_UPDATE_CLOCK, self.clocks)
        self.conversations, self.clocks = [], []


def _fingerprint(conv, segment: str | None, rules: Rules) -> str:
    parts = (rules.version, conv.priority, segment, conv.status, conv.created_at.isoformat(),
             conv.first_response_at is None, conv.resolved_at is None, conv.assignee_id is None)
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def refresh(conn: Connection, conv, segment: str | None, rules: Rules, now: datetime, *, clock=None,
            writes: _Writes | None = None) -> Timers | None:
    """Recompute one conversation's timers and store them (only what changed: the conversation's
    updated_at is left alone, or the worker would see its own writes as changes). clock: its
    sla_clock row when the caller loaded it; writes: collect the updates for the caller to flush."""
    own = writes is None
    writes = writes or _Writes()
    if clock is None:
        clock = conn.execute(select(clock_t).where(clock_t.c.conversation_id == conv.id)).first()
    print_ = _fingerprint(conv, segment, rules)
    if clock is not None and clock.fingerprint == print_:
        return None  # nothing the timers depend on changed (the usual case on a reread)
    started_at = conv.created_at
    if clock is not None:
        started_at = clock.started_at
        reopened = clock.status_seen not in RUNNING and conv.status in RUNNING
        if reopened:
            started_at = max(conv.updated_at, clock.started_at)
    timers = compute(conv, segment, started_at, rules, now)
    values = {
        "sla_policy": timers.policy,
        "first_response_due_at": timers.first_response_due_at,
        "resolution_due_at": timers.resolution_due_at,
        "sla_due_at": timers.sla_due_at,
    }
    if any(getattr(conv, k) != v for k, v in values.items()):
        writes.conversations.append({"_id": conv.id, **values})
    clock_values = {
        "started_at": timers.started_at,
        "status_seen": conv.status,
        "first_response_warn_at": timers.first_response_warn_at,
        "resolution_warn_at": timers.resolution_warn_at,
        "next_check_at": timers.next_check_at,
        "fingerprint": print_,
    }
    decided = conv.assignee_id is not None or conv.status != ConversationStatus.open  # a person did, or nothing to assign
    if clock is None:
        created = insert_ignoring_conflict(conn, clock_t, {"conversation_id": conv.id, "assign_done": decided,
                                                           "updated_at": now, **clock_values})
        if created is None:  # another process was first: its values are the same
            pass
    else:
        assign_done = True if decided else clock.assign_done
        if clock.status_seen not in RUNNING and conv.status in RUNNING and conv.assignee_id is None:
            assign_done = False  # reopened and nobody has it: assign again
        if clock.next_check_at is not None and timers.next_check_at == now and clock.next_check_at <= now:
            clock_values["next_check_at"] = clock.next_check_at  # already due: not a change
        clock_values["assign_done"] = assign_done
        # Most passes find nothing new (the watermark's slack rereads recent changes): write only changes.
        if any(getattr(clock, k) != v for k, v in clock_values.items()):
            writes.clocks.append({"_id": clock.id, "updated_at": now, **clock_values})
    if own:
        writes.flush(conn)
    return timers


def recompute_changed(engine: Engine, rules: Rules, *, since: datetime, now: datetime, batch: int = 200,
                      pacer: Pacer | None = None) -> int:
    """Refresh every conversation changed (or whose customer changed) since `since`. With a pacer,
    batches give way to ingest during a burst (hub/runtime/pacing.py)."""
    done = 0
    after = 0
    while True:
        started = time.monotonic()
        with write_tx(engine) as conn:
            rows = conn.execute(_changed_since(since, after, batch)).all()
            clocks = {c.conversation_id: c for c in conn.execute(
                select(clock_t).where(clock_t.c.conversation_id.in_([r.id for r in rows]))
            )} if rows else {}
            writes = _Writes()
            for row in rows:
                refresh(conn, row, row.segment, rules, now, clock=clocks.get(row.id), writes=writes)
            writes.flush(conn)
        done += len(rows)
        if len(rows) < batch:
            return done
        after = rows[-1].id
        if pacer is not None:
            pacer.after_batch(started)


def recompute_one(engine: Engine, conversation_id: int, rules: Rules, *, now: datetime | None = None) -> None:
    now = now or utcnow()
    with write_tx(engine) as conn:
        row = conn.execute(
            select(conversation_t, customer_t.c.segment)
            .join(customer_t, customer_t.c.id == conversation_t.c.customer_id)
            .where(conversation_t.c.id == conversation_id)
        ).first()
        if row is not None:
            refresh(conn, row, row.segment, rules, now)


# --- warnings and breaches --------------------------------------------------------------------------


def _minutes(delta: timedelta) -> str:
    minutes = int(abs(delta.total_seconds()) // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


LABEL = {"first_response": "first response", "resolution": "resolution"}


def _fire(conn: Connection, conv, segment: str | None, timer: str, stage: str, due: datetime, rules: Rules,
          now: datetime) -> bool:
    event_id = insert_ignoring_conflict(conn, event_t, {
        "conversation_id": conv.id, "timer": timer, "stage": stage, "due_at": due, "created_at": now,
    })
    if event_id is None:
        return False  # fired before (another process, or before a restart)
    if stage == "warning":
        text = f"SLA warning ({conv.sla_policy}): {LABEL[timer]} due at {due.isoformat(timespec='minutes')}"
    else:
        text = f"SLA breached ({conv.sla_policy}): {LABEL[timer]} was due at {due.isoformat(timespec='minutes')}"
    conn.execute(message_t.insert().values(
        conversation_id=conv.id, direction=Direction.system, channel=conv.channel, text=text,
        sent_at=now, created_at=now,
        metadata={"event": f"sla.{stage}", "timer": timer, "due_at": due.isoformat(), "policy": conv.sla_policy},
    ))
    if stage == "breach":
        if rules.escalate_on_breach and rules.escalation_target:
            from hub.scm import create_escalation

            create_escalation(conn, conv.id, f"SLA breached: {LABEL[timer]} was due at {due.isoformat(timespec='minutes')}",
                              target=rules.escalation_target, created_by="rule:sla_breach",
                              dedupe_key=f"sla:{conv.id}:{timer}:{int(due.timestamp())}")
        if rules.reassign_on_breach and rules.assignment != "off":
            team = rules.key_customer_team if segment == "key" else None
            agent_id = pick_agent(conn, "load", team, exclude=conv.assignee_id)
            if agent_id is not None:
                assign(conn, conv, agent_id, now=now, reason="SLA breach",
                                  only_if_assignee=conv.assignee_id)
    return True


def fire_due(engine: Engine, rules: Rules, *, now: datetime, batch: int = 200) -> int:
    """Act on the warnings and breaches that fell due; returns how many fired."""
    fired = 0
    while True:
        fired_now, looked_at = _fire_batch(engine, rules, now=now, batch=batch)
        fired += fired_now
        if looked_at < batch:
            return fired


def _fire_batch(engine: Engine, rules: Rules, *, now: datetime, batch: int) -> tuple[int, int]:
    fired = 0
    with write_tx(engine) as conn:
        rows = conn.execute(
            select(conversation_t, customer_t.c.segment,
                   clock_t.c.id.label("clock_id"), clock_t.c.first_response_warn_at, clock_t.c.resolution_warn_at)
            .join(clock_t, clock_t.c.conversation_id == conversation_t.c.id)
            .join(customer_t, customer_t.c.id == conversation_t.c.customer_id)
            .where(clock_t.c.next_check_at <= now)
            .order_by(clock_t.c.next_check_at)
            .limit(batch)
        ).all()
        for conv in rows:
            running = []
            if conv.status in RUNNING and conv.sla_policy is not None:
                if conv.first_response_at is None and conv.first_response_due_at is not None:
                    running.append(("first_response", conv.first_response_warn_at, conv.first_response_due_at))
                if conv.resolved_at is None and conv.resolution_due_at is not None:
                    running.append(("resolution", conv.resolution_warn_at, conv.resolution_due_at))
            ahead = []
            for timer, warn, due in running:
                if due <= now:
                    fired += _fire(conn, conv, conv.segment, timer, "breach", due, rules, now)
                else:
                    if warn is not None and warn <= now:
                        fired += _fire(conn, conv, conv.segment, timer, "warning", due, rules, now)
                    elif warn is not None:
                        ahead.append(warn)
                    ahead.append(due)
            conn.execute(update(clock_t).where(clock_t.c.id == conv.clock_id)
                         .values(next_check_at=min(ahead, default=None), updated_at=now))
    return fired, len(rows)


# --- assignment -------------------------------------------------------------------------------------


def assign_new(engine: Engine, rules: Rules, *, now: datetime, batch: int = 50) -> int:
    """Assign open, unassigned conversations the worker has not assigned yet."""
    if rules.assignment == "off":
        return 0
    assigned = 0
    with write_tx(engine) as conn:
        rows = conn.execute(
            select(conversation_t, customer_t.c.segment, clock_t.c.id.label("clock_id"))
            .join(clock_t, clock_t.c.conversation_id == conversation_t.c.id)
            .join(customer_t, customer_t.c.id == conversation_t.c.customer_id)
            .where(clock_t.c.assign_done.is_(False), conversation_t.c.status == ConversationStatus.open,
                   conversation_t.c.assignee_id.is_(None))
            .order_by(conversation_t.c.id)
            .limit(batch)
        ).all()
        for conv in rows:
            team = rules.key_customer_team if conv.segment == "key" else None
            sticky = sticky_agent(conn, conv.customer_id, conv.id, team)
            if sticky is not None:
                agent_id, holding = sticky
                reason = f"has the customer's conversation #{holding}"
            else:
                agent_id = pick_agent(conn, rules.assignment, team)
                if agent_id is None:
                    continue  # nobody available (for this team): try again on a later pass
                reason = f"key customer, team {team}" if team else ("round robin" if rules.assignment == "round_robin" else "by load")
            if assign(conn, conv, agent_id, now=now, reason=reason):
                assigned += 1
            conn.execute(update(clock_t).where(clock_t.c.id == conv.clock_id).values(assign_done=True))
    return assigned


# --- what agents see --------------------------------------------------------------------------------


def timer_view(conv, rules: Rules | None, now: datetime, *, first_response_warn_at: datetime | None = None,
               resolution_warn_at: datetime | None = None) -> dict[str, Any]:
    """One conversation's timers for the API and the inbox: due, remaining business time, state."""
    policy = rules.by_name(conv.sla_policy) if rules is not None else None
    cal = policy.calendar if policy is not None else None
    active = conv.status in RUNNING

    def one(due, stopped_at, running: bool, warn_at: datetime | None) -> dict[str, Any] | None:
        if due is None:
            return None
        end = stopped_at if stopped_at is not None else now
        remaining = business_time_between(end, due, cal) if cal is not None else due - end
        breached = end > due
        return {
            "due_at": due.isoformat(),
            "running": running,
            "met": None if stopped_at is None else stopped_at <= due,
            "breached": breached,
            "warning": running and not breached and warn_at is not None and now >= warn_at,
            "remaining_business_seconds": int(remaining.total_seconds()),
        }

    return {
        "conversation_id": conv.id,
        "policy": conv.sla_policy,
        "sla_due_at": conv.sla_due_at.isoformat() if conv.sla_due_at else None,
        "first_response": one(conv.first_response_due_at, conv.first_response_at,
                              active and conv.first_response_at is None, first_response_warn_at),
        "resolution": one(conv.resolution_due_at, conv.resolved_at, active and conv.resolved_at is None,
                          resolution_warn_at),
    }


def conversation_timers(engine: Engine, conversation_id: int, rules: Rules | None, *, now: datetime | None = None) -> dict[str, Any]:
    from hub.conversations import require_conversation

    with read_tx(engine) as conn:
        conv = require_conversation(conn, conversation_id)
        clock = conn.execute(select(clock_t).where(clock_t.c.conversation_id == conversation_id)).first()
        events = conn.execute(
            select(event_t.c.timer, event_t.c.stage, event_t.c.due_at, event_t.c.created_at)
            .where(event_t.c.conversation_id == conversation_id).order_by(event_t.c.id)
        ).all()
    out = timer_view(conv, rules, now or utcnow(),
                     first_response_warn_at=clock.first_response_warn_at if clock else None,
                     resolution_warn_at=clock.resolution_warn_at if clock else None)
    out["events"] = [{"timer": e.timer, "stage": e.stage, "due_at": e.due_at.isoformat(), "at": e.created_at.isoformat()}
                     for e in events]
    return out


# --- the worker -------------------------------------------------------------------------------------


def run_pass(engine: Engine, rules: Rules, *, now: datetime, batch: int = 200, pacer: Pacer | None = None) -> dict[str, int]:
    """One pass of the worker (also what tests drive with a controlled clock). A pacer stopped
    meanwhile ends it with pacing.Stopped before the watermark moves: the next pass finds the rest."""
    state = load_state(engine, *STATE) or {}
    since = datetime.fromisoformat(state["at"]) if state.get("at") else datetime(1970, 1, 1, tzinfo=UTC)
    recomputed = recompute_changed(engine, rules, since=since, now=now, batch=batch, pacer=pacer)
    save_state(engine, *STATE, {"at": (now - WATERMARK_SLACK).isoformat()})
    assigned = assign_new(engine, rules, now=now)
    fired = fire_due(engine, rules, now=now, batch=batch)
    return {"recomputed": recomputed, "assigned": assigned, "fired": fired}


class SlaWorker(PollingWorker):
    def __init__(self, engine: Engine, rules: Rules, *, poll_seconds: float = 5.0, batch: int = 200,
                 clock: Callable[[], datetime] = utcnow, on_change: Callable[[], None] | None = None,
                 pacer: Pacer | None = None):
        super().__init__()
        self.engine = engine
        self.pacer = pacer  # gives way to ingest during a burst
        self.rules = rules
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.clock = clock
        self.on_change = on_change  # wakes the outbox worker when an escalation was queued

    async def run_once(self) -> int:
        try:
            counts = await asyncio.to_thread(run_pass, self.engine, self.rules, now=self.clock(), batch=self.batch,
                                             pacer=self.pacer)
        except asyncio.CancelledError:
            if self.pacer is not None:
                self.pacer.stop()  # the pass in its thread ends at its next batch (run_pass keeps the old watermark)
            raise
        if (counts["fired"] or counts["assigned"]) and self.on_change is not None:
            self.on_change()
        # Never "more work at once": the watermark pass always finds the last minute again.
        return 0
