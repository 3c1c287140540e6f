"""Settings of the SCM/ERP back ends (SERVICEHUB_SCM__BACKEND__...): which one, and how to reach it.

STUB (being built): the shape the hub's settings embed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class BackendSettings(BaseModel):
    kind: Literal["sql", "http", "erpnext", "odoo"] = "sql"
    timeout_seconds: float = 5.0
    breaker_failures: int = 5
    breaker_reset_seconds: float = 30.0
