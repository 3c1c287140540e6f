"""A real Dovecot IMAP server on loopback for tests: its own config, state and maildir in a
temporary directory, plaintext login, no TLS. start() and stop() can be repeated to restart it
with the same mail (and the same UIDVALIDITY).

Dovecot will not run its login processes as root nor deliver mail as UID 0: as root the packaged
unprivileged users (dovenull for logins, dovecot for internal services) and "nobody" for the
mailbox are used; as anyone else, everything runs as the current user.
"""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

CANDIDATES = ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")


class DovecotMissing(RuntimeError):
    pass


def find_dovecot() -> str | None:
    for path in CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("dovecot")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _user(name: str, fallback: str) -> str:
    try:
        pwd.getpwnam(name)
        return name
    except KeyError:
        return fallback


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1 (openssl CLI); (cert, key)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl is not installed")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )
    return cert, key


class Dovecot:
    def __init__(self, *, username: str = "support", password: str = "secret", port: int | None = None,
                 tls: tuple[Path, Path] | None = None):
        """tls: (cert, key) to offer STARTTLS on port and implicit TLS on ssl_port."""
        binary = find_dovecot()
        if binary is None:
            raise DovecotMissing("dovecot is not installed (apt-get install dovecot-imapd)")
        self.binary = binary
        self.username = username
        self.password = password
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.tls = tls
        self.ssl_port = free_port() if tls else 0
        # Not pytest's tmp_path: its parents are 0700, and Dovecot's unprivileged processes must
        # reach the maildir.
        self.dir = Path(tempfile.mkdtemp(prefix="servicehub-dovecot-"))
        os.chmod(self.dir, 0o755)
        self.proc: subprocess.Popen | None = None
        self._configure()

    def _configure(self) -> None:
        d = self.dir
        for sub in ("run", "state", "mail"):
            (d / sub).mkdir(exist_ok=True)
        if os.geteuid() == 0:
            internal = _user("dovecot", "nobody")
            login = _user("dovenull", "nobody")
            mail_user = "nobody"
            mail_group = grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
            uid = pwd.getpwnam(mail_user).pw_uid
            gid = pwd.getpwnam(mail_user).pw_gid
            os.chown(d / "mail", uid, gid)
        else:
            internal = login = mail_user = pwd.getpwuid(os.getuid()).pw_name
            mail_group = grp.getgrgid(os.getgid()).gr_name
        internal_group = grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name
        (d / "passwd").write_text(f"{self.username}:{{PLAIN}}{self.password}\n")
        if self.tls:
            cert, key = self.tls
            ssl = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}"
        else:
            ssl = "ssl = no"
        (d / "dovecot.conf").write_text(
            f"""
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
mail_location = maildir:{d}/mail/%u
mail_fsync = never
shutdown_clients = yes
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.ssl_port}
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group} home={d}/mail/%u
}}
"""
        )

    @property
    def log(self) -> str:
        path = self.dir / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, timeout: float = 10.0) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.dir / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"dovecot exited with {self.proc.returncode}: {err}\n{self.log}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                    s.settimeout(2)
                    if s.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not start listening on {self.port} within {timeout} s\n{self.log}")

    def stop(self, *, hard: bool = False) -> None:
        """Stop the server and every process it started; hard: SIGKILL (a crash) instead of SIGTERM."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL if hard else signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()
        if hard:
            # The master is gone; its children (login, imap) may linger a moment holding the port.
            for _ in range(100):
                try:
                    with socket.create_connection((self.host, self.port), timeout=0.2):
                        pass
                except OSError:
                    break
                time.sleep(0.05)

    def restart(self, *, hard: bool = False) -> None:
        self.stop(hard=hard)
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- a mail client, as a person or another system would use the mailbox -----------------

    def client(self, timeout: float = 10.0) -> imaplib.IMAP4:
        imap = imaplib.IMAP4(self.host, self.port, timeout=timeout)
        imap.login(self.username, self.password)
        return imap

    def append(self, raw: bytes, *, flags: str | None = None, mailbox: str = "INBOX") -> int:
        """Put a message into the mailbox; returns its UID."""
        imap = self.client()
        try:
            typ, data = imap.append(mailbox, flags, None, raw)
            assert typ == "OK", data
            text = data[0].decode()
            # [APPENDUID <uidvalidity> <uid>]
            return int(text.split("APPENDUID", 1)[1].split("]", 1)[0].split()[1])
        finally:
            imap.logout()

    def deliver(self, raws, *, start: int = 0) -> int:
        """Put messages straight into the INBOX's Maildir, as a local delivery agent would (much
        faster than APPEND for thousands); Dovecot gives them UIDs in this order when it next
        looks. Returns how many were written."""
        maildir = self.dir / "mail" / self.username
        owner = None
        if os.geteuid() == 0:
            owner = (pwd.getpwnam("nobody").pw_uid, pwd.getpwnam("nobody").pw_gid)
        for sub in ("", "cur", "new", "tmp"):
            path = maildir / sub
            if not path.exists():
                path.mkdir(parents=True)
                if owner:
                    os.chown(path, *owner)
        written = 0
        for i, raw in enumerate(raws, start=start):
            # <seconds>.<unique>.<host>,S=<size>: names that sort in delivery order; S= spares the
            # server reading the file for its size.
            path = maildir / "new" / f"{1_700_000_000 + i:012d}.M{i}P{os.getpid()}.servicehub,S={len(raw)}"
            path.write_bytes(raw)
            if owner:
                os.chown(path, *owner)
            written += 1
        return written

    def expunge_all_but(self, keep: int, mailbox: str = "INBOX") -> int:
        """Another client deletes every message but the last `keep` (a person emptying the
        mailbox); returns how many were expunged."""
        imap = self.client(timeout=120)
        try:
            imap.select(mailbox)
            typ, data = imap.search(None, "ALL")
            count = len(data[0].split())
            if count > keep:
                imap.store(f"1:{count - keep}", "+FLAGS.SILENT", r"(\Deleted)")
                imap.expunge()
            return max(0, count - keep)
        finally:
            imap.logout()

    def flags(self, uid: int, mailbox: str = "INBOX") -> str:
        imap = self.client()
        try:
            imap.select(mailbox, readonly=True)
            typ, data = imap.uid("FETCH", str(uid), "(FLAGS)")
            return data[0].decode() if data and data[0] else ""
        finally:
            imap.logout()

    def mark_seen(self, uid: int, mailbox: str = "INBOX") -> None:
        imap = self.client()
        try:
            imap.select(mailbox)
            imap.uid("STORE", str(uid), "+FLAGS", r"(\Seen)")
        finally:
            imap.logout()
