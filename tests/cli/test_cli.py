"""The servicehub command as a user runs it: separate processes, real database files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from sqlalchemy import select

from hub.auth.accounts import Authenticator, digest, login
from hub.store.db import make_engine
from hub.store.models import ApiToken, Conversation, Identity

CLI = [sys.executable, "-m", "hub.cli"]


def run(args, env, stdin=None, check=True):
    result = subprocess.run(CLI + args, env=env, input=stdin, capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def env(tmp_path, db_url):
    e = dict(os.environ)
    e.update(SERVICEHUB_DATA_DIR=str(tmp_path / "data"), SERVICEHUB_DATABASE_URL=db_url)
    e.pop("SERVICEHUB_CONFIG", None)
    return e


def test_create_token_prints_the_token_alone_on_its_last_line(env, db_url):
    out = run(["create-token", "shop", "--role", "integration"], env).stdout
    token = out.strip().splitlines()[-1]
    assert token.startswith("shub_") and " " not in token
    engine = make_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(select(ApiToken.__table__)).one()
    assert row.token_hash == digest(token) and row.role == "integration"  # stored hashed only
    assert Authenticator(engine).resolve(token).role == "integration"
    engine.dispose()


def test_create_token_rejects_unknown_roles(env):
    result = run(["create-token", "x", "--role", "root"], env, check=False)
    assert result.returncode != 0 and "invalid choice" in result.stderr


def test_create_agent_with_password_flag_or_stdin(env, db_url):
    run(["create-agent", "Boss@Example.com", "--role", "admin", "--password", "correct horse"], env)
    run(["create-agent", "helper@example.com"], env, stdin="battery staple\n")
    engine = make_engine(db_url)
    assert login(engine, "boss@example.com", "correct horse", days=1).principal.role == "admin"
    assert login(engine, "helper@example.com", "battery staple", days=1).principal.role == "agent"
    engine.dispose()
    again = run(["create-agent", "boss@example.com", "--password", "correct horse"], env, check=False)
    assert again.returncode == 2 and "exists already" in again.stderr
    short = run(["create-agent", "x@example.com", "--password", "short"], env, check=False)
    assert short.returncode == 2 and "at least 8" in short.stderr


def test_demo_seeds_several_channels_once(env, db_url, tmp_path):
    first = run(["demo"], env).stdout
    assert "admin login:" in first and "API token" in first
    second = run(["demo"], env).stdout
    assert first == second  # idempotent: same credentials, no new data
    engine = make_engine(db_url)
    with engine.connect() as conn:
        kinds = set(conn.execute(select(Identity.__table__.c.kind)).scalars())
        channels = set(conn.execute(select(Conversation.__table__.c.channel)).scalars())
        owners = dict(conn.execute(select(Identity.__table__.c.address, Identity.__table__.c.customer_id)).all())
    engine.dispose()
    assert kinds == {"email", "telegram", "phone"}
    assert channels == {"email", "telegram", "voice", "webform"}
    # Dmitri wrote by web form and by email: one customer. Chloé's Telegram account shared the
    # phone she called from, so her call and her chat are one customer (her email is another).
    assert owners["dmitri@example.org"] and owners["+442079460958"] == owners["27182818"]
    assert owners["chloe.martin@example.com"] != owners["27182818"]
    creds = json.loads((tmp_path / "data" / "demo-credentials.json").read_text())
    assert oct((tmp_path / "data" / "demo-credentials.json").stat().st_mode & 0o777) == "0o600"
    assert creds["admin_password"] in first


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_serve_migrates_and_answers(env):
    port = _free_port()
    proc = subprocess.Popen(CLI + ["serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    assert json.load(resp) == {"status": "ok", "database": "ok"}
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "the hub did not come up"
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(30)


def test_set_password_replaces_it_and_ends_sessions(env, db_url):
    run(["create-agent", "ana@example.com", "--password", "first password"], env)
    engine = make_engine(db_url)
    session = login(engine, "ana@example.com", "first password", days=1)
    run(["set-password", "Ana@Example.com"], env, stdin="second password\n")
    from hub.contract.errors import Unauthenticated

    with pytest.raises(Unauthenticated):
        login(engine, "ana@example.com", "first password", days=1)
    assert login(engine, "ana@example.com", "second password", days=1).principal.role == "agent"
    with pytest.raises(Unauthenticated):
        Authenticator(engine, ttl=0).resolve(session.token)  # the old session is gone
    engine.dispose()
    unknown = run(["set-password", "nobody@example.com", "--password", "whatever123"], env, check=False)
    assert unknown.returncode == 2 and "no agent" in unknown.stderr


def test_help_lists_the_commands_every_capability_adds():
    import re

    from hub.cli.main import build_parser

    commands = re.search(r"\{([a-z,-]+)\}", build_parser().format_usage()).group(1).split(",")
    assert commands == ["serve", "migrate", "demo", "create-agent", "set-password", "create-token", "kb", "intents",
                        "segments", "customer"]
    result = subprocess.run(CLI + ["--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and all(name in result.stdout for name in commands)
