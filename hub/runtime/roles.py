"""What one `servicehub serve` process does: its role, decided here and nowhere else.

- web:    HTTP only (API, inbox, webhooks, forms). No background loop runs; no lease is taken.
- worker: the loops only (outbox, spool, routing, SLA, segments, demand push, pollers). Its HTTP
          listener answers /livez, /readyz, /healthz and /metrics and nothing else (404).
- all:    both, as a single process always did (the default).
Any number of each may run against one PostgreSQL; loops that must run once are elected
(hub/runtime/leases.py). With outbox_inline_worker off, an `all` process runs no loop either (the
older way of running web-only processes).

The capabilities read the role through settings_for(): each capability's `workers` already starts
its loops only when outbox_inline_worker is on, so that one switch carries the role to all of them.
hub/web/process.py gives the app the rest (elections, cross-process events, drain, the worker's
narrow listener); hub/web/operations.py answers the probes.
"""

from __future__ import annotations

ROLES = ("all", "web", "worker")

# What a worker's listener serves: probes and figures, no API.
WORKER_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})


def serves_http(role: str) -> bool:
    return role in ("all", "web")


def runs_loops(role: str, settings) -> bool:
    """Whether background loops run in a process of this role (the one place that decides)."""
    if role == "web":
        return False
    if role == "worker":
        return True
    return settings.outbox_inline_worker


def settings_for(role: str, settings):
    """The settings a process of this role runs with: outbox_inline_worker says whether it runs loops."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    wanted = runs_loops(role, settings)
    if wanted == settings.outbox_inline_worker:
        return settings
    return settings.model_copy(update={"outbox_inline_worker": wanted})
