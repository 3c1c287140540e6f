"""What each capability tells privacy requests about its own tables.

A capability whose tables hold anything about a customer has a `privacy.py` beside its other
modules (hub/customers/privacy.py, hub/conversations/privacy.py, ...) that registers, for each such
table, an exporter (what the customer gets to see) and an eraser (what an erasure removes or keeps,
and why). hub/privacy/requests.py only runs what was registered: a new capability adds its part
instead of editing privacy, and a table that references customers, conversations or messages with
no registered eraser fails a test (tests/privacy/test_privacy_registry.py).

Who a request is about is resolved once, before any part runs, by the scopes: the customers part
finds the customer, the profiles merged into it and their identities; the conversations part their
conversations and messages. Parts then work from those ids only, so the order they run in does not
matter for what they find. Erasers run children before parents (the reverse of the tables'
foreign-key order): a row is gone or let go of before the row it points at is deleted.
"""

from __future__ import annotations

import base64
import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, or_
from sqlalchemy.sql import ColumnElement

from hub.store.blobs import BlobStore

# Scopes run in this order: who the customer is, then what they wrote, then what follows from it.
WHO, WHAT, DERIVED = 0, 1, 2


@dataclass
class Subject:
    """Who a privacy request is about, as ids the parts select by."""

    customer_id: int
    for_erasure: bool = False  # resolved in the erasure's transaction: the customer's row is locked first
    customer_ids: list[int] = field(default_factory=list)  # the customer and every profile merged into it
    identity_ids: list[int] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)  # their identities' addresses, as stored
    names: list[str] = field(default_factory=list)  # profile and display names
    conversation_ids: list[int] = field(default_factory=list)  # their conversations
    # Every message of their conversations, and the messages they wrote into other customers'
    # conversations (a colleague on Cc who answered): both are theirs to see and to have erased.
    message_ids: list[int] = field(default_factory=list)
    messages_elsewhere: list[int] = field(default_factory=list)  # the second kind, also in message_ids
    # Other customers' messages that list one of their addresses (To, Cc, the envelope): those keep
    # their text but lose the address and their raw source, which names them in its headers.
    messages_naming: list[int] = field(default_factory=list)
    # Audit-log targets about them ("customer:3", "conversation:9", "escalation:2").
    audit_targets: list[str] = field(default_factory=list)

    @property
    def needles(self) -> list[str]:
        """Their names and addresses (4 characters or more), to find them in free-form payloads."""
        return sorted({s for s in (*self.addresses, *self.names) if s and len(s) >= 4})


@dataclass
class Export:
    """An export being assembled. The conversations part sets `conversations` and `messages`;
    other parts attach rows to them by conversation_id / message_id, or add sections."""

    conn: Connection
    subject: Subject
    blobs: BlobStore | None
    include_files: bool
    sections: dict[str, Any] = field(default_factory=dict)
    conversations: list[dict] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    per_conversation: dict[str, list[dict]] = field(default_factory=dict)
    per_message: dict[str, list[dict]] = field(default_factory=dict)
    other: dict[str, list[dict]] = field(default_factory=dict)

    def file(self, sha: str | None) -> str | None:
        """A stored file as base64 when files are wanted and it is still there; else None."""
        if not sha or self.blobs is None or not self.include_files:
            return None
        try:
            return base64.b64encode(self.blobs.get(sha)).decode("ascii")
        except (OSError, KeyError, ValueError):
            return None  # gone (an earlier erase, a lost disk): the metadata says what it was

    def document(self) -> dict[str, Any]:
        """The sections, with each conversation holding its messages and every per-conversation
        part, and each message its per-message parts."""
        for key, rows in self.per_message.items():
            by_msg: dict[int, list] = {}
            for r in rows:
                by_msg.setdefault(r["message_id"], []).append(r)
            for m in self.messages:
                m[key] = by_msg.get(m["id"], [])
        by_conv: dict[int, list] = {}
        for m in self.messages:
            by_conv.setdefault(m["conversation_id"], []).append(m)
        for c in self.conversations:
            c["messages"] = by_conv.get(c["id"], [])
        for key, rows in self.per_conversation.items():
            grouped: dict[int, list] = {}
            for r in rows:
                grouped.setdefault(r["conversation_id"], []).append(r)
            for c in self.conversations:
                c[key] = grouped.get(c["id"], [])
        return {**self.sections, "conversations": self.conversations, "other": {k: v for k, v in self.other.items() if v}}


@dataclass
class Erasure:
    """An erasure in progress, inside one write transaction."""

    conn: Connection
    subject: Subject
    counts: dict[str, int] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)  # blobs the erased rows used: deleted after the commit if unused


Exporter = Callable[[Export], None]
Eraser = Callable[[Erasure], None]


@dataclass(frozen=True)
class Part:
    table: Table
    export: Exporter
    erase: Eraser


_parts: dict[str, Part] = {}
_scopes: list[tuple[int, int, Callable[[Connection, Subject], None]]] = []
_file_users: list[Callable[[Connection, list[str]], set[str]]] = []
_after_erase: list[Callable[[Engine], None]] = []


def register(table, *, export: Exporter, erase: Eraser) -> None:
    """Register the exporter and the eraser of one table (a Table or a SQLModel table class).
    A table is registered once: its owner decides what happens to it."""
    table = getattr(table, "__table__", table)
    known = _parts.get(table.name)
    if known is not None and (known.export, known.erase) != (export, erase):
        raise ValueError(f"table {table.name} already has a privacy part")
    _parts[table.name] = Part(table, export, erase)


def register_scope(resolve: Callable[[Connection, Subject], None], *, stage: int) -> None:
    """Register a step that fills in part of the Subject; steps run by stage (WHO, WHAT, DERIVED)."""
    if not any(fn is resolve for _, _, fn in _scopes):
        _scopes.append((stage, len(_scopes), resolve))


def register_file_use(used: Callable[[Connection, list[str]], set[str]]) -> None:
    """Register a check of which of the given blob hashes a table still uses: an erased row's file
    is deleted only when no table does (identical files are stored once)."""
    if used not in _file_users:
        _file_users.append(used)


def register_after_erase(step: Callable[[Engine], None]) -> None:
    """Register a step run after the erasure committed (a search index to purge of old text)."""
    if step not in _after_erase:
        _after_erase.append(step)


def load_parts() -> None:
    """Import every capability's privacy module (hub/<capability>/privacy.py): that registers them."""
    import hub

    for info in pkgutil.iter_modules(hub.__path__):
        if info.ispkg and (Path(hub.__path__[0]) / info.name / "privacy.py").is_file():
            importlib.import_module(f"hub.{info.name}.privacy")


def parts() -> dict[str, Part]:
    """The registered parts by table name."""
    load_parts()
    return dict(_parts)


def ordered_parts(*, children_first: bool) -> list[Part]:
    """The registered parts in the tables' foreign-key order (parents first), or its reverse."""
    from sqlmodel import SQLModel

    known = parts()
    order = [t.name for t in SQLModel.metadata.sorted_tables if t.name in known]
    order += sorted(set(known) - set(order))  # tables outside the models' metadata, if any
    if children_first:
        order.reverse()
    return [known[name] for name in order]


def resolve(conn: Connection, customer_id: int, *, for_erasure: bool = False) -> Subject:
    """The Subject of a request about `customer_id`, every registered scope applied."""
    load_parts()
    subject = Subject(customer_id, for_erasure=for_erasure)
    for _, _, step in sorted(_scopes, key=lambda s: (s[0], s[1])):
        step(conn, subject)
    return subject


def files_in_use(conn: Connection, shas: list[str]) -> set[str]:
    """Which of these blob hashes some registered table still uses."""
    used: set[str] = set()
    for check in _file_users:
        used |= check(conn, shas)
    return used


def after_erase(engine: Engine) -> None:
    for step in _after_erase:
        step(engine)


# --- helpers the parts share ------------------------------------------------------------------------


def chunks(ids: list, size: int = 500) -> Iterator[list]:
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


def among(col, ids: Iterable) -> ColumnElement[bool]:
    """col IN ids, in chunks (SQLite's limit on bound parameters); false for no ids."""
    ids = list(ids)
    if not ids:
        return col.in_([])
    return or_(*(col.in_(part) for part in chunks(ids)))


def plain(value: Any) -> Any:
    """A stored value as JSON-ready data (times as ISO text; binary, derived data, left out)."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return None  # embeddings: derived from the text, not the customer's
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def rows_of(conn: Connection, stmt) -> list[dict[str, Any]]:
    """The rows of a select as JSON-ready dicts."""
    return [{k: plain(v) for k, v in r._mapping.items()} for r in conn.execute(stmt)]


def keep(_: Erasure) -> None:
    """The eraser of a table that holds nothing about the person beyond ids and times (an SLA
    timer, an agent's read mark): its rows stay, as the figures reports count."""


def nothing_to_export(_: Export) -> None:
    """The exporter of a table whose rows say nothing the customer did not see elsewhere."""
