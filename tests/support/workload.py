"""Work for the parser pool's worker processes in tests (hub/runtime/parser_pool.py): module-level
functions of a module the workers import, so they travel by reference."""

from __future__ import annotations

import os
import time


def spin(seconds: float) -> int:
    """Busy for `seconds` (CPU, as a pathological parse), then the process id."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return os.getpid()
