"""Pick the configured back end and wrap it with timeouts and a circuit breaker.

STUB (being built).
"""

from __future__ import annotations

from pathlib import Path

from adapters.base import ScmBackend
from adapters.config import BackendSettings


def build_backend(settings: BackendSettings, *, data_dir: Path) -> ScmBackend:
    raise NotImplementedError("the SCM back ends are being built")
