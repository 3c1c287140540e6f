"""Prometheus metrics, one registry per app (so tests can run several apps in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import Engine, func, select

from hub.store.models import Outbox


class HubMetrics:
    def __init__(self, engine: Engine):
        self.registry = CollectorRegistry()
        self.ingested = Counter(
            "servicehub_messages_ingested_total", "Inbound messages stored", ["channel"], registry=self.registry
        )
        self.duplicates = Counter(
            "servicehub_messages_duplicate_total", "Inbound messages already stored (replays)", ["channel"], registry=self.registry
        )
        self.rejected = Counter(
            "servicehub_messages_rejected_total", "Inbound messages refused as invalid", ["channel"], registry=self.registry
        )
        self.deliveries = Counter(
            "servicehub_outbox_results_total", "Outbox delivery attempts by outcome", ["kind", "status"], registry=self.registry
        )
        self.http = Histogram(
            "servicehub_http_request_seconds", "HTTP request latency", ["method", "route", "status"], registry=self.registry
        )
        self.registry.register(_OutboxBacklog(engine))

    def watch_process(self, role: str, elections, events) -> None:
        """Add this process's part among several: its role, the leases it holds, the live events
        it sent and heard (hub/web/process.py)."""
        self.registry.register(_ProcessFigures(role, elections, events))


class _OutboxBacklog:
    """Outbox rows by status, read at scrape time: the number an operator alerts on."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def collect(self):
        gauge = GaugeMetricFamily("servicehub_outbox_rows", "Outbox rows by status", labels=["status"])
        try:
            with self.engine.connect() as conn:
                t = Outbox.__table__
                for status, count in conn.execute(select(t.c.status, func.count()).group_by(t.c.status)):
                    gauge.add_metric([status], count)
        except Exception:  # a scrape must not fail because the database blinked
            pass
        yield gauge


class _ProcessFigures:
    """servicehub_process_role{role} 1, servicehub_lease_held{name} 1 per lease held here, leases
    taken and live events sent and heard since the start."""

    def __init__(self, role: str, elections, events):
        self.role, self.elections, self.events = role, elections, events

    def collect(self):
        role = GaugeMetricFamily("servicehub_process_role", "This process's role (web, worker, all)", labels=["role"])
        role.add_metric([self.role], 1)
        yield role
        held = GaugeMetricFamily("servicehub_lease_held", "Leases of elected loops held by this process", labels=["name"])
        for name in self.elections.held():
            held.add_metric([name], 1)
        yield held
        for name, value, doc in (
            ("servicehub_leases_taken", self.elections.takeovers, "Leases this process has taken since it started"),
            ("servicehub_live_events_published", self.events.published, "Live events sent to the other processes"),
            ("servicehub_live_events_heard", self.events.heard, "Live events heard from the other processes"),
        ):
            family = GaugeMetricFamily(name, doc)
            family.add_metric([], value)
            yield family
