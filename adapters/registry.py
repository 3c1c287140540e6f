"""Pick the configured back end and wrap it with timeouts and a circuit breaker."""

from __future__ import annotations

from pathlib import Path

from adapters.base import ScmBackend
from adapters.config import BackendMisconfigured, BackendSettings
from adapters.guard import GuardedBackend

__all__ = ["BackendMisconfigured", "build_backend"]


def build_backend(settings: BackendSettings, *, data_dir: Path) -> ScmBackend:
    """The back end `settings.kind` names, guarded. Nothing is contacted here: a back end that is
    down at start-up shows as BackendUnavailable on the first call, never as a hub that will not
    start. The sql back end without a URL is the demo database in data_dir, seeded here."""
    inner = _inner(settings, Path(data_dir))
    return GuardedBackend(inner, timeout_seconds=settings.timeout_seconds,
                          breaker_failures=settings.breaker_failures,
                          breaker_reset_seconds=settings.breaker_reset_seconds)


def _inner(settings: BackendSettings, data_dir: Path) -> ScmBackend:
    kind = settings.kind
    if kind == "sql":
        from adapters.sql import SqlBackend

        url = settings.sql.url.get_secret_value()
        if not url:
            from adapters.demo_scm import seed_demo_scm

            url = seed_demo_scm(data_dir)
        return SqlBackend(settings.sql, url=url, phone_region=settings.phone_region)
    if kind == "http":
        from adapters.http import HttpBackend

        _need(settings.http.base_url, "SERVICEHUB_SCM__BACKEND__HTTP__BASE_URL")
        return HttpBackend(settings.http, phone_region=settings.phone_region, timeout_seconds=settings.timeout_seconds)
    if kind == "erpnext":
        from adapters.erpnext import ErpnextBackend

        _need(settings.erpnext.url, "SERVICEHUB_SCM__BACKEND__ERPNEXT__URL")
        return ErpnextBackend(settings.erpnext, phone_region=settings.phone_region,
                              timeout_seconds=settings.timeout_seconds)
    if kind == "odoo":
        from adapters.odoo import OdooBackend

        _need(settings.odoo.url, "SERVICEHUB_SCM__BACKEND__ODOO__URL")
        _need(settings.odoo.database, "SERVICEHUB_SCM__BACKEND__ODOO__DATABASE")
        return OdooBackend(settings.odoo, phone_region=settings.phone_region, timeout_seconds=settings.timeout_seconds)
    raise BackendMisconfigured(f"unknown SCM back end kind {kind!r}")


def _need(value: str, variable: str) -> None:
    if not value:
        raise BackendMisconfigured(f"the SCM back end needs {variable} (or the same key in the TOML file)")
