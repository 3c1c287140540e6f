"""Small shared helpers for bench/ingest.py: percentiles, memory, timestamps, printing."""

from __future__ import annotations

import math
import os
import resource
import time
from datetime import UTC, datetime

SQLITE_TS = "%Y-%m-%d %H:%M:%S.%f"  # how sqlmodel's UTCDateTime stores a time on SQLite (UTC, no offset)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an unsorted list."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def peak_rss_mb() -> float:
    """Peak resident set size of this process (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM (Linux >= 4.0: write 5 to /proc/self/clear_refs), so that
    phase_peak_rss_mb() reports the peak of one phase. False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def phase_peak_rss_mb() -> float | None:
    """VmHWM of this process since the last reset_peak_rss()."""
    return proc_status_mb(os.getpid()).get("VmHWM")


def proc_status_mb(pid: int) -> dict[str, float]:
    """VmRSS / VmHWM (peak RSS) of another process from /proc/<pid>/status, in MiB."""
    out: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(rest.split()[0]) / 1024
    except OSError:
        pass
    return out


def proc_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (its threads included) from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            raw = fh.read()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def loadavg() -> tuple[float, float, float] | None:
    """The 1/5/15-minute load averages: other work on the machine skews every figure here."""
    try:
        return os.getloadavg()
    except OSError:
        return None


def sqlite_ts(when: datetime) -> str:
    return when.astimezone(UTC).strftime(SQLITE_TS)


def utc_now_sqlite() -> str:
    return datetime.now(UTC).strftime(SQLITE_TS)


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        self.cpu_seconds = time.process_time() - self.cpu_start
        return False


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("nan")


def fmt_num(value, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}"
    return str(value)


def table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    """A plain-text table; align is a string of 'l'/'r' per column (default: first left, rest right)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" + "r" * (len(headers) - 1)
    lines = []
    for n, row in enumerate(cells):
        parts = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def say(*parts) -> None:
    print(*parts, flush=True)
