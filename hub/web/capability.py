"""How a capability plugs into the web app: one small declaration per capability.

Each capability package (hub/sla, hub/scm, ...) declares a `capability = Capability(...)` next to
its routes; hub/web/app.py builds the app from one explicit list of them. For each, in the list's
order: `setup` puts the capability's objects in the app (under its keys in hub/web/keys.py) and
registers its listeners, `routes` adds its routes. When the app starts, every `lifespan` is
entered in the list's order, then every capability's `workers` are started (hub/runtime/workers.py);
when it stops, all of it unwinds in reverse. `openapi` gives the paths and the pydantic models the
capability adds to the OpenAPI document (hub/web/openapi.py assembles them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from aiohttp import web

from hub.runtime.workers import Worker


@dataclass(frozen=True)
class ApiDoc:
    """A capability's part of the OpenAPI document: its paths, and the pydantic models they refer to
    (added to components/schemas)."""

    paths: dict
    models: Sequence[type] = ()


@dataclass(frozen=True)
class Capability:
    name: str
    setup: Callable[[web.Application], None] | None = None
    routes: Callable[[web.Application], None] | None = None
    openapi: Callable[[], ApiDoc] | None = None
    # Started after every lifespan, so a worker finds what the lifespans made (the SCM back end...).
    workers: Callable[[web.Application], Iterable[Worker]] | None = None
    # What must be open while the app runs and closed after its workers stopped (a thread, a client session).
    lifespan: Callable[[web.Application], AbstractAsyncContextManager] | None = None
    # Capabilities that must come before this one in the list (their setup made what this one uses).
    requires: tuple[str, ...] = field(default=())


def check_order(capabilities: Sequence[Capability]) -> None:
    """Refuse a list where a capability comes before one it requires, or a name repeats: the order is
    declared, and a wrong one fails at the start rather than as a missing key at the first request."""
    seen: set[str] = set()
    for cap in capabilities:
        if cap.name in seen:
            raise ValueError(f"capability {cap.name!r} is listed twice")
        missing = [name for name in cap.requires if name not in seen]
        if missing:
            raise ValueError(f"capability {cap.name!r} requires {', '.join(missing)} before it in the list")
        seen.add(cap.name)
