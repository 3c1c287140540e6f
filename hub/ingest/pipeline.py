"""The one write path in: every channel's InboundMessage becomes stored rows here, and only here.

ingest() and ingest_many() are plain synchronous functions over an Engine, so tests, benchmarks,
the CLI and the web app call the same code. The web app reaches them through the group-committing
writer in hub/ingest/writer.py: a commit is the expensive part of a write, so messages that arrive
together share one transaction. A batch is first written optimistically; if any message in it
fails, the batch is rolled back and redone with a SAVEPOINT per message, so one bad message never
spoils the others. The optimistic pass runs its few statements per message on the bare DBAPI
cursor (hub.store.sql.DriverStatements: the same Core statements, compiled once); the careful pass goes
through SQLAlchemy as usual. Both run the one _store() below.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from hub.contract.addresses import identity_kind, normalise
from hub.contract.errors import HubError, RejectedInput
from hub.contract.messages import InboundMessage
from hub.conversations import bumped_if, queue_outbound, require_conversation
from hub.customers import current_customer, merge_in_tx, record_redeemer, redeem
from hub.ingest.threading_rules import clean_subject, find_conversation
from hub.store.blobs import BlobStore
from hub.store.db import write_tx
from hub.store.models import (
    Attachment,
    Conversation,
    ConversationStatus,
    Customer,
    Direction,
    Identity,
    IdentityKind,
    Message,
    Segment,
    utcnow,
)
from hub.store.sanitize import sanitize_html
from hub.store.sql import CoreStatements, DriverStatements, insert_ignoring_conflict, statements_for

customer_t = Customer.__table__
identity_t = Identity.__table__
conversation_t = Conversation.__table__
message_t = Message.__table__
attachment_t = Attachment.__table__

MAX_EXTERNAL_ID = 500
MAX_TEXT = 1_000_000
_RETRYABLE_SQLSTATES = ("40P01", "40001")  # PostgreSQL deadlock, serialisation failure


@dataclass(frozen=True)
class IngestPolicy:
    reopen_window: timedelta = timedelta(days=7)
    max_attachment_bytes: int = 25 * 1_048_576
    phone_region: str | None = None
    # What our signed Message-IDs verify with (hub.contract.signing.message_id_key); without it a mail
    # threads by our ids only as far as the store vouches for them (ids of the older form).
    message_id_key: bytes | None = field(default=None, repr=False)
    # A message nothing threads continues the customer's one matter active within this window
    # (hub/ingest/threading_rules.py, continue_matter); None: every such message starts its own.
    continuity_window: timedelta | None = timedelta(hours=24)


@dataclass(frozen=True)
class IngestResult:
    customer_id: int
    conversation_id: int
    message_id: int
    created: bool
    edited: bool = False
    # The ingest queued a message to the customer (a link-code answer): the outbox worker has work.
    queued_outbound: bool = False


class _Duplicate(Exception):
    """The same (channel, external_id) is already stored (or was, a moment ago, by another writer)."""


class _IdentityRace(Exception):
    """Another transaction created the same identity first: retry and find it."""


@dataclass(frozen=True)
class _Prepared:
    """An InboundMessage checked and normalised, ready to be written (no I/O left but SQL)."""

    msg: InboundMessage
    kind: str
    address: str
    name: str | None
    html: str | None
    attachments: list[dict]
    meta: dict
    verified: list[tuple[str, str]]


# Built once: the hot path binds values to cached compiled statements (building a statement per
# call cost more than executing it).
_FIND_MESSAGE = (
    select(message_t.c.id, message_t.c.conversation_id, conversation_t.c.customer_id)
    .join(conversation_t, conversation_t.c.id == message_t.c.conversation_id)
    .where(message_t.c.channel == bindparam("channel"), message_t.c.external_id == bindparam("external_id"))
)
_FIND_IDENTITY = select(identity_t.c.id, identity_t.c.customer_id).where(
    identity_t.c.kind == bindparam("kind"), identity_t.c.address == bindparam("address")
)
# A message on an open conversation leaves what agents decide on as it was: the version moves
# only where the status (or a resolution) changes (hub/conversations/versions.py).
_TOUCH_CONVERSATION = (
    update(conversation_t)
    .where(conversation_t.c.id == bindparam("cid"))
    .values(status=ConversationStatus.open, last_message_at=bindparam("now"), updated_at=bindparam("now"),
            snoozed_until=None, version=bumped_if(conversation_t.c.status != ConversationStatus.open))
)
_REOPEN_CONVERSATION = _TOUCH_CONVERSATION.values(
    resolved_at=None,
    version=bumped_if(or_(conversation_t.c.status != ConversationStatus.open, conversation_t.c.resolved_at.is_not(None))),
)


def find_existing(conn: Connection, channel: str, external_id: str) -> IngestResult | None:
    row = conn.execute(_FIND_MESSAGE, {"channel": channel, "external_id": external_id}).first()
    if row is None:
        return None
    return IngestResult(customer_id=row.customer_id, conversation_id=row.conversation_id, message_id=row.id, created=False)


def _aware(when: datetime | None) -> datetime | None:
    """Channels that hand over naive times mean UTC."""
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when


KINDS = ("message", "edit", "callback")
LINKED_TEXT = "Thank you: this chat is now linked to your customer account, so we can see your whole history."
LINK_INVALID_TEXT = "Sorry, that link has expired or was already used. Please ask us for a new one."


def validate(msg: InboundMessage) -> None:
    if msg.kind not in KINDS:
        raise RejectedInput(f"kind must be one of: {', '.join(KINDS)}")
    if not msg.channel:
        raise RejectedInput("channel is required")
    if not msg.external_id or len(msg.external_id) > MAX_EXTERNAL_ID:
        raise RejectedInput(f"external_id must have 1 to {MAX_EXTERNAL_ID} characters")
    if not (msg.text or msg.html or msg.attachments):
        raise RejectedInput("a message needs text, html or an attachment")
    if len(msg.text) > MAX_TEXT:
        raise RejectedInput(f"text is longer than {MAX_TEXT} characters")
    if msg.metadata:
        try:
            json.dumps(msg.metadata)
        except (TypeError, ValueError) as exc:
            raise RejectedInput(f"metadata must be JSON: {exc}") from None


def _store_attachments(msg: InboundMessage, blobs: BlobStore | None, limit: int) -> list[dict]:
    rows = []
    for att in msg.attachments:
        if att.data is not None:
            if len(att.data) > limit:
                raise RejectedInput(f"attachment {att.filename!r} is larger than {limit} bytes")
            if blobs is None:
                raise RejectedInput("this hub has no blob store for attachments")
            sha, size = blobs.put(att.data), len(att.data)
        elif att.blob_sha256:
            sha, size = att.blob_sha256, att.size or 0
        else:
            raise RejectedInput(f"attachment {att.filename!r} has neither bytes nor a blob reference")
        rows.append(
            {
                "filename": (att.filename or "attachment")[:300],
                "content_type": (att.content_type or "application/octet-stream")[:200],
                "size": size,
                "sha256": sha,
                "content_id": att.content_id,
            }
        )
    return rows


def prepare(msg: InboundMessage, policy: IngestPolicy, blobs: BlobStore | None) -> _Prepared:
    """Validate and normalise outside any transaction (blobs are written here, content-addressed,
    so a rolled-back message leaves at most an unreferenced file, never a dangling row)."""
    validate(msg)
    kind = identity_kind(msg.channel, msg.sender.address, msg.sender.kind)
    address = normalise(kind, msg.sender.address, phone_region=policy.phone_region)
    meta = dict(msg.metadata)
    if msg.thread.in_reply_to:
        meta["in_reply_to"] = list(msg.thread.in_reply_to)
    if msg.flags:
        meta["flags"] = sorted(set(msg.flags))
    if msg.raw is not None and blobs is not None:
        meta["raw_sha256"] = blobs.put(msg.raw)
    verified = []
    for ident in msg.verified_identities:
        vkind = identity_kind("", ident.address, ident.kind)
        verified.append((vkind, normalise(vkind, ident.address, phone_region=policy.phone_region)))
    return _Prepared(
        msg=msg,
        kind=kind,
        address=address,
        name=(msg.sender.name or "").strip()[:200] or None,
        html=sanitize_html(msg.html),
        attachments=_store_attachments(msg, blobs, policy.max_attachment_bytes),
        meta=meta,
        verified=verified,
    )


def resolve_customer(
    q: CoreStatements | DriverStatements, kind: str, address: str, name: str | None, linked_to: int | None = None
) -> tuple[int, int]:
    """(customer_id, identity_id) for a normalised address, creating both for a new sender.

    linked_to: the customer a redeemed link code names; the sender's identity joins that customer
    (and a customer the identity already had is merged into it)."""
    conn = q.conn
    row = q.first(_FIND_IDENTITY, {"kind": kind, "address": address})
    if row is not None:
        identity_id, customer_id = row
        if linked_to is not None and customer_id != linked_to:
            merge_in_tx(conn, linked_to, customer_id, "hub", "link code")
            _verify(conn, identity_id)
            return linked_to, identity_id
        return customer_id, identity_id
    now = utcnow()
    if linked_to is not None:
        customer_id = linked_to
    else:
        customer_id = q.insert(
            customer_t, {"name": name, "segment": Segment.general, "created_at": now, "updated_at": now}
        )
        conn.info.setdefault("new_customers", set()).add(customer_id)
    identity_id = q.insert_ignoring_conflict(
        identity_t,
        {
            "customer_id": customer_id,
            "kind": kind,
            "address": address,
            "display_name": name,
            "verified": linked_to is not None,
            "created_at": now,
        },
    )
    if identity_id is None:
        raise _IdentityRace()
    return customer_id, identity_id


def _created_here(conn: Connection, customer_id: int) -> bool:
    return customer_id in conn.info.get("new_customers", ())


def _verify(conn: Connection, identity_id: int) -> None:
    conn.execute(update(identity_t).where(identity_t.c.id == identity_id).values(verified=True))


def _attach_verified(conn: Connection, customer_id: int, verified: list[tuple[str, str]]) -> None:
    """Addresses the channel proved to be the sender's: attach them, merging their customers in."""
    for kind, address in verified:
        row = conn.execute(_FIND_IDENTITY, {"kind": kind, "address": address}).first()
        if row is None:
            new_id = insert_ignoring_conflict(
                conn,
                identity_t,
                {"customer_id": customer_id, "kind": kind, "address": address, "verified": True, "created_at": utcnow()},
            )
            if new_id is None:
                raise _IdentityRace()
            continue
        if row.customer_id != customer_id:
            merge_in_tx(conn, customer_id, row.customer_id, "hub", f"verified {kind} identity")
        _verify(conn, row.id)


def _apply_edit(conn: Connection, p: _Prepared) -> IngestResult | None:
    """Replace the stored text of an edited message, keeping the previous versions."""
    row = conn.execute(
        select(
            message_t.c.id, message_t.c.text, message_t.c.html, message_t.c.metadata,
            message_t.c.conversation_id, conversation_t.c.customer_id,
        )
        .join(conversation_t, conversation_t.c.id == message_t.c.conversation_id)
        .where(message_t.c.channel == p.msg.channel, message_t.c.external_id == p.msg.external_id)
    ).first()
    if row is None:
        return None
    if row.text != p.msg.text or row.html != p.html:
        meta = dict(row.metadata or {})
        meta["edits"] = (list(meta.get("edits", [])) + [{"text": row.text, "replaced_at": utcnow().isoformat()}])[-20:]
        conn.execute(
            update(message_t).where(message_t.c.id == row.id).values(text=p.msg.text, html=p.html, metadata=meta)
        )
    return IngestResult(row.customer_id, row.conversation_id, row.id, created=False, edited=True)


def _store(q: CoreStatements | DriverStatements, p: _Prepared, policy: IngestPolicy) -> IngestResult:
    """Write one prepared message. The statements of the common case go through `q` (the bare
    driver on the optimistic path); the rare ones (edits, link codes, verified identities,
    attachments, automatic replies) through SQLAlchemy on the same connection and transaction."""
    conn = q.conn
    msg, now = p.msg, utcnow()
    if msg.kind == "edit":
        edited = _apply_edit(conn, p)
        if edited is not None:
            return edited
    linked_to, link_text = None, None
    if msg.link_code:
        linked_to = redeem(conn, msg.link_code)
        if linked_to is not None:
            linked_to = current_customer(conn, linked_to)
        link_text = LINKED_TEXT if linked_to is not None else LINK_INVALID_TEXT
    customer_id, identity_id = resolve_customer(q, p.kind, p.address, p.name, linked_to)
    if linked_to is not None:
        record_redeemer(conn, msg.link_code, identity_id)
    # Two messages of one customer at once must not open two conversations. (A customer created
    # in this transaction is invisible to others until commit: nothing to lock.)
    if not _created_here(conn, customer_id):
        q.lock_row(customer_t, customer_id)
    if p.verified:
        _attach_verified(conn, customer_id, p.verified)
    decision = find_conversation(
        q, msg, customer_id, now=now, reopen_window=policy.reopen_window, automated=msg.automated,
        sender_address=p.address if p.kind == IdentityKind.email else None, message_id_key=policy.message_id_key,
        # A customer created by this message has no matter yet, unless a verified address merged one in.
        continuity_window=policy.continuity_window, new_customer=_created_here(conn, customer_id) and not p.verified,
    )
    if decision.conversation_id is None:
        conversation_id = q.insert(
            conversation_t,
            {
                "customer_id": customer_id,
                "channel": msg.channel,
                "thread_key": msg.thread.thread_key,
                "subject": clean_subject(msg.subject),
                # Machine-written mail with nowhere to go is kept, but out of the open inbox.
                "status": ConversationStatus.closed if msg.automated else ConversationStatus.open,
                "priority": "normal",
                "last_message_at": now,
                "created_at": now,
                "updated_at": now,
            },
        )
    else:
        conversation_id = decision.conversation_id
        if not msg.automated:
            stmt = _REOPEN_CONVERSATION if decision.reopen else _TOUCH_CONVERSATION
            q.execute(stmt, {"cid": conversation_id, "now": now})

    # The unique (channel, external_id) is the dedupe: no look-up first, the insert tells.
    message_id = q.insert_ignoring_conflict(
        message_t,
        {
            "conversation_id": conversation_id,
            "direction": Direction.system if msg.kind == "callback" else Direction.inbound,
            "channel": msg.channel,
            "external_id": msg.external_id,
            "identity_id": identity_id,
            "subject": msg.subject[:500] if msg.subject else None,
            "text": msg.text,
            "html": p.html,
            "sent_at": _aware(msg.sent_at) or now,
            "created_at": now,
            "metadata": p.meta,
        },
    )
    if message_id is None:
        raise _Duplicate()
    if p.attachments:
        conn.execute(attachment_t.insert(), [dict(row, message_id=message_id) for row in p.attachments])
    if link_text is not None:
        queue_outbound(conn, require_conversation(conn, conversation_id), link_text)
    return IngestResult(
        customer_id=customer_id,
        conversation_id=conversation_id,
        message_id=message_id,
        created=True,
        queued_outbound=link_text is not None,
    )


def _store_in_savepoint(conn: Connection, p: _Prepared, policy: IngestPolicy) -> IngestResult | HubError:
    q = CoreStatements(conn)
    for attempt in range(5):
        try:
            with conn.begin_nested():
                return _store(q, p, policy)
        except _Duplicate:
            existing = find_existing(conn, p.msg.channel, p.msg.external_id)
            if existing is not None:
                return existing
            # PostgreSQL: the row we collided with was rolled back; try again.
        except HubError as exc:
            return exc
        except (_IdentityRace, IntegrityError):
            if attempt == 4:
                raise
    raise RuntimeError("ingest kept colliding with concurrent writers")


def _store_batch(engine: Engine, prepared: list[tuple[int, _Prepared]], policy: IngestPolicy, careful: bool) -> dict:
    """One transaction for the batch. Optimistic (careful=False): no savepoints; any surprise (a
    duplicate, a rejected message, a race with another writer) aborts the whole batch so the
    caller redoes it carefully, with a savepoint per message. Savepoints cost two statements per
    message, and surprises are rare."""
    out: dict[int, IngestResult | HubError] = {}
    with write_tx(engine) as conn:
        conn.info["new_customers"] = set()  # per transaction; conn.info outlives it
        if careful:
            for i, p in prepared:
                out[i] = _store_in_savepoint(conn, p, policy)
            return out
        # No look-up first: the message insert reports a duplicate, which sends the batch round
        # again carefully; replays are rare next to new messages. The statements run on the
        # bare driver: without savepoints there is nothing SQLAlchemy needs to track.
        q = statements_for(conn)
        for i, p in prepared:
            out[i] = _store(q, p, policy)
    return out


def ingest_many(
    engine: Engine,
    msgs: Sequence[InboundMessage],
    *,
    policy: IngestPolicy = IngestPolicy(),
    blobs: BlobStore | None = None,
) -> list[IngestResult | HubError]:
    """Store messages in one transaction; each result is the stored ids or the HubError that
    rejected that message (the others are stored all the same)."""
    results: list[IngestResult | HubError | None] = [None] * len(msgs)
    prepared: list[tuple[int, _Prepared]] = []
    for i, msg in enumerate(msgs):
        try:
            prepared.append((i, prepare(msg, policy, blobs)))
        except HubError as exc:
            results[i] = exc
    careful = False
    for attempt in range(5):
        try:
            stored = _store_batch(engine, prepared, policy, careful)
            break
        except (_Duplicate, _IdentityRace, IntegrityError, HubError):
            if careful:
                raise
            careful = True
        except OperationalError as exc:
            # A PostgreSQL deadlock or serialisation failure rolls back the whole batch: redo it.
            if getattr(exc.orig, "sqlstate", None) not in _RETRYABLE_SQLSTATES or attempt == 4:
                raise
            careful = True
    for i, result in stored.items():
        results[i] = result
    return results  # type: ignore[return-value]


def ingest(
    engine: Engine, msg: InboundMessage, *, policy: IngestPolicy = IngestPolicy(), blobs: BlobStore | None = None
) -> IngestResult:
    """Store one inbound message: identity -> customer, thread -> conversation, dedupe, store.

    Idempotent on (channel, external_id): a replay returns the stored ids with created=False.
    Raises RejectedInput for input that can never be stored as it is.
    """
    result = ingest_many(engine, [msg], policy=policy, blobs=blobs)[0]
    if isinstance(result, HubError):
        raise result
    return result
