"""POST /api/v1/messages against the hub running as its own process (`servicehub serve`)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from _bench_common import percentile, proc_cpu_seconds, proc_status_mb

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_token(url: str) -> str:
    from hub.auth.accounts import create_token
    from hub.store.db import make_engine
    from hub.store.migrate import upgrade

    upgrade(url)
    engine = make_engine(url, pool_size=1)
    try:
        return create_token(engine, "bench", role="integration")
    finally:
        engine.dispose()


class Server:
    """`servicehub serve` in a subprocess, with its log in data_dir/server.log."""

    def __init__(self, url: str, data_dir: Path):
        self.url = url
        self.data_dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = data_dir / "server.log"

    def start(self, timeout: float = 60) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(
            SERVICEHUB_DATA_DIR=str(self.data_dir),
            SERVICEHUB_DATABASE_URL=self.url,
            SERVICEHUB_CONFIG=str(self.data_dir / "none.toml"),  # no servicehub.toml from anywhere
        )
        exe = VENV_BIN / "servicehub"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "hub.cli"]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [*cmd, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            cwd=self.data_dir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_healthy(timeout)

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not answer /healthz within {timeout}s:\n{self.log_tail()}")

    def wait_quiet(self, *, window: float = 1.0, busy_share: float = 0.05, timeout: float = 180.0) -> float:
        """Wait until the server's own start-up work is over (loading models, building indexes in
        background threads): its CPU use over `window` seconds falls below `busy_share`. The
        seconds waited; the timed load must not share the CPU with a warm-up."""
        started = time.monotonic()
        before = self.cpu_seconds()
        while time.monotonic() - started < timeout:
            time.sleep(window)
            now = self.cpu_seconds()
            if before is None or now is None or now - before < busy_share * window:
                break
            before = now
        return time.monotonic() - started

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def memory_mb(self) -> dict[str, float]:
        return proc_status_mb(self.proc.pid) if self.proc else {}

    def cpu_seconds(self) -> float | None:
        return proc_cpu_seconds(self.proc.pid) if self.proc else None

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


async def _post_all(port: int, token: str, bodies: list[bytes], concurrency: int) -> tuple[list[float], Counter, float]:
    import aiohttp

    url = f"http://127.0.0.1:{port}/api/v1/messages"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    statuses: Counter = Counter()
    it = iter(bodies)
    connector = aiohttp.TCPConnector(limit=max(64, concurrency), limit_per_host=max(64, concurrency))
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            for body in it:  # one shared iterator: each body is sent once
                started = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                        statuses[resp.status] += 1
                except (TimeoutError, aiohttp.ClientError) as exc:
                    statuses[f"error:{type(exc).__name__}"] += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return latencies, statuses, seconds


class BareServer(Server):
    """bench/_bench_bare_server.py: aiohttp alone, the same route, nothing stored."""

    def start(self, timeout: float = 60) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        script = Path(__file__).with_name("_bench_bare_server.py")
        # -P: bench/ not on the path, where email.py (the email benchmark) would hide the stdlib's.
        self.proc = subprocess.Popen([sys.executable, "-P", str(script), str(self.port)], stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_healthy(timeout)


def run_framework_ceiling(data_dir: Path, bodies: list[bytes], warmup: list[bytes], concurrency: int = 32) -> dict:
    """The same posts, from the same client, to aiohttp alone (BareServer): the HTTP ceiling of
    this machine in this run."""
    server = BareServer("", data_dir)
    server.start()
    try:
        asyncio.run(_post_all(server.port, "", warmup, concurrency))
        cpu_before = server.cpu_seconds()
        _, statuses, seconds = asyncio.run(_post_all(server.port, "", bodies, concurrency))
        cpu_after = server.cpu_seconds()
    finally:
        server.stop()
    return {
        "requests": len(bodies),
        "requests_per_s": len(bodies) / seconds if seconds else float("nan"),
        "statuses": {str(k): v for k, v in statuses.items()},
        "non_201": len(bodies) - statuses.get(201, 0),
        "server_cpu_s": (cpu_after - cpu_before) if cpu_before is not None and cpu_after is not None else None,
    }


def run_http(url: str, data_dir: Path, bodies: list[bytes], warmup: list[bytes], concurrency: int = 32) -> dict:
    """Start the hub on `url`, post the warm-up then the timed bodies, stop it; the figures."""
    token = make_token(url)
    server = Server(url, data_dir)
    server.start()
    try:
        quiet_before = server.wait_quiet()
        _, warm_statuses, _ = asyncio.run(_post_all(server.port, token, warmup, concurrency))
        # What the warm-up messages set off in the background (routing, suggestions) settles
        # first too, so the timed run measures the ingest path and what it sets off itself.
        quiet_after = server.wait_quiet()
        cpu_before = server.cpu_seconds()
        client_cpu_before = time.process_time()
        latencies, statuses, seconds = asyncio.run(_post_all(server.port, token, bodies, concurrency))
        client_cpu = time.process_time() - client_cpu_before
        cpu_after = server.cpu_seconds()
        mem = server.memory_mb()
    finally:
        rc = server.stop()
    ok = statuses.get(201, 0)
    return {
        "requests": len(bodies),
        "concurrency": concurrency,
        "seconds": seconds,
        "msgs_per_s": ok / seconds if seconds else float("nan"),
        "requests_per_s": len(bodies) / seconds if seconds else float("nan"),
        "status_201": ok,
        "non_201": len(bodies) - ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))},
        "warmup_requests": len(warmup),
        "warmup_statuses": {str(k): v for k, v in warm_statuses.items()},
        "latency_ms": {
            "p50": percentile(latencies, 50) * 1000,
            "p95": percentile(latencies, 95) * 1000,
            "p99": percentile(latencies, 99) * 1000,
            "max": max(latencies) * 1000 if latencies else float("nan"),
        },
        "server_cpu_s": (cpu_after - cpu_before) if cpu_before is not None and cpu_after is not None else None,
        "client_cpu_s": client_cpu,
        "server_vm_hwm_mb": mem.get("VmHWM"),
        "server_vm_rss_mb": mem.get("VmRSS"),
        "server_warmup_wait_s": round(quiet_before + quiet_after, 1),
        "server_exit_code": rc,
        "server_log_tail": server.log_tail(10) if (len(bodies) - ok) or rc not in (0, None) else "",
    }
