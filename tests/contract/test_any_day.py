"""The suite holds on any day: the modules whose answers depend on the date (late orders and the
wording of answers, back-end fixtures, SLA, reports' and demand's ranges, segments' windows, survey expiry, the
clock itself) run again in a subprocess with the system clock 400 days ahead. Debian's faketime
moves the clock of that process and of everything it starts, so a fixed date that slips back into a
fixture, or a wall-clock read that bypasses hub.contract.clock, fails here rather than on some later day.

SQLite only: the PostgreSQL runs are the same code, and a second cluster would double the time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import need

ROOT = Path(__file__).resolve().parents[2]
MODULES = (
    "tests/contract/test_clock.py",
    "tests/adapters/test_adapters_http.py",
    "tests/adapters/test_adapters_erpnext.py",
    "tests/adapters/test_adapters_odoo.py",
    "tests/adapters/test_adapters_sql.py",
    "tests/scm/test_routing.py",
    "tests/segments/test_segments.py",
    "tests/scm/test_demand.py",
    "tests/sla/test_sla.py",
    "tests/sla/test_business_hours.py",
    "tests/reports/test_reports.py",
    "tests/csat/test_csat.py",
)


@pytest.mark.slow
def test_the_date_sensitive_modules_pass_a_year_ahead():
    faketime = shutil.which("faketime")
    need(faketime is not None, "faketime is not installed (apt-get install faketime)")
    # The inner run takes its own options, not the ones this run was given.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")}
    command = [faketime, "-f", "+400d", sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
               "-m", "not postgres", "-k", "not postgresql and not browser", *MODULES]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, f"failed with the clock 400 days ahead:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
