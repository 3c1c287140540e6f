"""`make run`'s parts, end to end, as a newcomer meets them: on a fresh directory, `servicehub migrate`,
`servicehub demo` then `servicehub serve` (child processes, settings only from the defaults and the
Makefile's environment: ./data, SQLite); the sign-in page and the favicon answer, an unknown inbox
address is the styled error page, the demo's admin signs in with the printed password and sees the
demo's conversations; SIGTERM stops the server cleanly, with nothing at ERROR in its log."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.support.inbox import login_token
from tests.support.serverproc import REPO, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def make_env(home: Path) -> dict[str, str]:
    """The environment `make run` gives its commands: the caller's, with the Makefile's exports, and
    no SERVICEHUB_ setting (nor a servicehub.toml: the directory is fresh) of the machine's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICEHUB_")}
    env.update(HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", HOME=str(home))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return env


def servicehub(*args: str) -> list[str]:
    return [sys.executable, "-m", "hub.cli", *args]


def wait_for_port(proc: subprocess.Popen, port: int, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"servicehub serve exited with {proc.returncode} before listening\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"servicehub serve did not listen on {port} within {timeout}s\n{log.read_text(errors='replace')}")


class Browser:
    """A plain HTTP client with cookies, not following redirects (each answer is checked as sent)."""

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
                                                  self._NoRedirect)

    def request(self, path: str, data: dict | None = None, headers: dict | None = None) -> tuple[int, dict, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body, headers={"Accept": "text/html", **(headers or {})})
        try:
            with self.opener.open(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode(errors="replace")


def test_make_run_demo_then_serve_on_a_fresh_directory(tmp_path):
    env = make_env(tmp_path)
    for step in ("migrate", "demo"):
        done = subprocess.run(servicehub(step), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, (step, done.stdout, done.stderr)
    assert "admin login:  admin@example.com / " in done.stdout
    credentials = json.loads((tmp_path / "data" / "demo-credentials.json").read_text())
    assert credentials["admin_password"] in done.stdout
    assert (tmp_path / "data" / "servicehub.db").exists()

    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(servicehub("serve", "--port", str(port)), cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(proc, port, log)
        browser = Browser(f"http://127.0.0.1:{port}")
        status, _, login_page = browser.request("/inbox/login")
        assert status == 200 and 'name="password"' in login_page
        status, headers, favicon = browser.request("/favicon.ico")
        assert status == 200 and headers["Content-Type"].startswith("image/svg+xml") and favicon.startswith("<svg")
        status, headers, missing = browser.request("/inbox/no/such/page")
        assert status == 404 and headers["Content-Type"].startswith("text/html")
        assert "inbox.css" in missing and 'href="/inbox"' in missing and "Traceback" not in missing

        status, headers, _ = browser.request("/inbox/login", {
            "email": "admin@example.com", "password": credentials["admin_password"], "_csrf": login_token(login_page),
            "next": "/inbox"})
        assert status == 303 and headers["Location"] == "/inbox"
        status, _, inbox = browser.request("/inbox")
        assert status == 200
        rows = re.findall(r'href="/inbox/c/(\d+)"', inbox)
        assert len(set(rows)) >= 5, inbox[:2000]
        assert "Ana Silva" in inbox and "Sign out" in inbox
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            code = "killed after SIGTERM did not stop it"
    text = log.read_text(errors="replace")
    assert code == 0, text[-4000:]
    assert "servicehub (all) listening on" in text
    bad = [line for line in text.splitlines() if " ERROR " in line or " CRITICAL " in line or "Traceback" in line]
    assert not bad, text[-4000:]
