"""Fixtures of the email tests: a real Dovecot on loopback, a certificate the clients trust, and the
IMAP poller's back-off shortened (modules that restart servers ask for it with usefixtures)."""

from __future__ import annotations

import shutil
import ssl

import pytest

from channels.email.imap import ImapPoller
from tests.conftest import need
from tests.support.dovecot import Dovecot, DovecotMissing, find_dovecot, make_certificate


@pytest.fixture
def dovecot():
    need(find_dovecot() is not None, "dovecot is not installed (apt-get install dovecot-imapd)")
    try:
        server = Dovecot()
    except DovecotMissing as exc:  # pragma: no cover - find_dovecot said yes
        need(False, str(exc))
    server.start()
    yield server
    server.close()


@pytest.fixture
def quick_reconnect(monkeypatch):
    # Production backs off from 1 s to 2 min; the tests restart servers and want it back at once.
    monkeypatch.setattr(ImapPoller, "backoff_first", 0.1)
    monkeypatch.setattr(ImapPoller, "backoff_max", 0.4)
    monkeypatch.setattr(ImapPoller, "command_timeout", 10.0)


@pytest.fixture
def trusted_cert(tmp_path, monkeypatch) -> tuple:
    """A self-signed certificate for 127.0.0.1 that clients in this test trust (SSL_CERT_FILE):
    (server context, cert path, key path)."""
    need(shutil.which("openssl") is not None, "openssl is not installed")
    cert, key = make_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, cert, key
