"""Agents (argon2-hashed passwords, roles agent/admin), their sessions, and API tokens (roles
integration/backoffice).

API tokens and session tokens are 256-bit random values, stored as SHA-256 digests. A slow hash
(argon2) protects guessable passwords; for random tokens a fast digest is as safe and keeps
per-request authentication cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

import idna
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, func, select, update

from hub.contract.errors import Conflict, RejectedInput, Unauthenticated
from hub.contract.i18n import N_
from hub.contract.principal import Principal
from hub.store.audit import audit
from hub.store.db import read_tx, write_tx
from hub.store.models import Agent, AgentRole, AgentSession, ApiToken, AuditLog, TokenRole, utcnow

agent_t = Agent.__table__
session_t = AgentSession.__table__
token_t = ApiToken.__table__
audit_t = AuditLog.__table__

_hasher = PasswordHasher()
# Verifying against this keeps a login for an unknown email as slow as one for a known email.
_DUMMY_HASH = _hasher.hash("not a password")
TOKEN_PREFIX = "shub_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise RejectedInput(N_("a password needs at least 8 characters"))
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_agent(engine: Engine, email: str, password: str, *, role: str = "agent", name: str | None = None, actor: str = "cli") -> int:
    from hub.contract.addresses import normalise_email

    try:
        role = AgentRole(role)
    except ValueError:
        raise RejectedInput(f"role must be one of: {', '.join(r.value for r in AgentRole)}") from None
    email = normalise_email(email)
    password_hash = hash_password(password)
    with write_tx(engine) as conn:
        if conn.execute(select(agent_t.c.id).where(agent_t.c.email == email)).first():
            raise Conflict(N_("an agent with email %(email)s exists already"), params={"email": email})
        agent_id = conn.execute(
            agent_t.insert()
            .values(email=email, name=name, password_hash=password_hash, role=role, active=True, created_at=utcnow())
            .returning(agent_t.c.id)
        ).scalar_one()
        audit(conn, actor, "agent.create", f"agent:{agent_id}", email=email, role=role.value)
    return agent_id


def set_password(engine: Engine, email: str, password: str, *, actor: str = "cli") -> None:
    """Give an agent a new password (they forgot it); their open sessions end."""
    from hub.contract.addresses import normalise_email

    email = normalise_email(email)
    password_hash = hash_password(password)
    with write_tx(engine) as conn:
        done = conn.execute(update(agent_t).where(agent_t.c.email == email).values(password_hash=password_hash)).rowcount
        if not done:
            raise RejectedInput(f"no agent with email {email}")
        # A new password ends every session opened with the old one.
        agent_id = conn.execute(select(agent_t.c.id).where(agent_t.c.email == email)).scalar_one()
        conn.execute(session_t.delete().where(session_t.c.agent_id == agent_id))
        audit(conn, actor, "agent.password", f"agent:{agent_id}")


def create_token(engine: Engine, name: str, *, role: str, actor: str = "cli") -> str:
    """Create an API token; the plain token is returned once and never stored."""
    try:
        role = TokenRole(role)
    except ValueError:
        raise RejectedInput(f"role must be one of: {', '.join(r.value for r in TokenRole)}") from None
    if not name.strip():
        raise RejectedInput(N_("a token needs a name"))
    token = new_token()
    with write_tx(engine) as conn:
        token_id = conn.execute(
            token_t.insert()
            .values(name=name.strip()[:200], token_hash=digest(token), role=role, created_at=utcnow())
            .returning(token_t.c.id)
        ).scalar_one()
        audit(conn, actor, "token.create", f"token:{token_id}", name=name, role=role.value)
    return token


@dataclass(frozen=True)
class Session:
    token: str
    csrf_token: str
    principal: Principal


def sign_in_address(typed: str) -> str | None:
    """The stored form of an agent's address typed at sign-in, or None when it is not typed plainly.

    Plainly: surrounding spaces and letter case do not matter, and an IDN domain may be typed in
    Unicode or ASCII; angle brackets, a final dot, fullwidth or other compatibility characters,
    invisible ones (soft hyphen, zero-width) do not sign in, although the lock-out counts them as
    the same account (hub.auth.lockout.account_key). An address that signs in has one spelling that
    people can read and compare in the audit log and the admin pages, and a look-alike does not
    pass as the real thing."""
    from hub.contract.addresses import normalise_email

    value = (typed or "").strip()
    if unicodedata.normalize("NFKC", value) != value or any(unicodedata.category(c) in ("Cf", "Cc") for c in value):
        return None  # compatibility forms (fullwidth...), invisible and control characters
    try:
        stored = normalise_email(value)
    except RejectedInput:
        return None
    local, _, ascii_domain = stored.rpartition("@")
    try:
        unicode_domain = idna.decode(ascii_domain)
    except idna.IDNAError:
        unicode_domain = ascii_domain
    return stored if value.lower() in (stored, f"{local}@{unicode_domain}") else None


class NotPlainAddress(Unauthenticated):
    """A sign-in with the address in another spelling than its plain one (see sign_in_address)."""


def login(engine: Engine, email: str, password: str, *, days: float) -> Session:
    """A new session for the agent with this address and password; Unauthenticated otherwise
    (NotPlainAddress when the address was not typed plainly, whatever the password)."""
    typed, email = email, sign_in_address(email) or ""
    with read_tx(engine) as conn:
        row = conn.execute(
            select(agent_t.c.id, agent_t.c.password_hash, agent_t.c.role, agent_t.c.email, agent_t.c.active).where(
                agent_t.c.email == email
            )
        ).first()
    ok = verify_password(row.password_hash if row else _DUMMY_HASH, password)
    if not email and (typed or "").strip():
        # Said whatever the account and the password: the form of the address alone decides it.
        raise NotPlainAddress("wrong email or password; type the address plainly (no <>, no final dot, "
                              "no fullwidth or invisible characters)")
    if not (row and ok and row.active):
        raise Unauthenticated("wrong email or password")
    token, csrf = new_token(), secrets.token_urlsafe(32)
    now = utcnow()
    with write_tx(engine) as conn:
        conn.execute(
            session_t.insert().values(
                agent_id=row.id, token_hash=digest(token), csrf_token=csrf, created_at=now, expires_at=now + timedelta(days=days),
                last_seen_at=now,
            )
        )
    return Session(token, csrf, Principal("agent", row.id, row.role, row.email, csrf))


def logout(engine: Engine, token: str) -> None:
    with write_tx(engine) as conn:
        conn.execute(session_t.delete().where(session_t.c.token_hash == digest(token)))


class Authenticator:
    """Resolves bearer tokens and session cookies to principals, with a short cache so the API's
    hot path does not read the database per request. A revoked token stops working within
    `ttl` seconds on every web worker.

    An agent's session ends at its expiry (session_days after sign-in) or after `idle` without a
    request, whichever comes first: a session left open on a shared or lost computer does not
    stay usable for weeks. Use is written to the session at most every `touch_every`, so the idle
    time is counted to within that (and the cache's `ttl`)."""

    def __init__(self, engine: Engine, *, ttl: float = 10.0, idle: timedelta = timedelta(hours=12),
                 touch_every: timedelta | None = None):
        self.engine = engine
        self.ttl = ttl
        self.idle = idle
        self.touch_every = touch_every if touch_every is not None else min(idle / 10, timedelta(minutes=5))
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def forget(self, token: str) -> None:
        with self._lock:
            self._cache.pop(digest(token), None)

    def resolve(self, token: str) -> Principal:
        key = digest(token)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            principal = hit[1]
        else:
            principal = self._lookup(key)
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[key] = (now + self.ttl, principal)
        if principal is None:
            raise Unauthenticated("the token or session is not valid (expired, revoked or mistyped)")
        return principal

    def _lookup(self, key: str) -> Principal | None:
        now = utcnow()
        with read_tx(self.engine) as conn:
            row = conn.execute(
                select(token_t.c.id, token_t.c.role, token_t.c.name).where(
                    token_t.c.token_hash == key, token_t.c.revoked_at.is_(None)
                )
            ).first()
            if row is not None:
                return Principal("token", row.id, row.role, row.name)
            row = conn.execute(
                select(agent_t.c.id, agent_t.c.role, agent_t.c.email, agent_t.c.language, session_t.c.csrf_token,
                       session_t.c.id.label("sid"),
                       func.coalesce(session_t.c.last_seen_at, session_t.c.created_at).label("seen"))
                .join(session_t, session_t.c.agent_id == agent_t.c.id)
                .where(session_t.c.token_hash == key, session_t.c.expires_at > now, agent_t.c.active.is_(True),
                       func.coalesce(session_t.c.last_seen_at, session_t.c.created_at) > now - self.idle)
            ).first()
        if row is None:
            return None
        seen = row.seen if row.seen.tzinfo is not None else row.seen.replace(tzinfo=now.tzinfo)
        if now - seen >= self.touch_every:
            with write_tx(self.engine) as conn:
                conn.execute(update(session_t).where(session_t.c.id == row.sid).values(last_seen_at=now))
        return Principal("agent", row.id, row.role, row.email, row.csrf_token, row.language)


def csrf_ok(principal: Principal, presented: str | None) -> bool:
    return bool(principal.csrf_token and presented and hmac.compare_digest(principal.csrf_token, presented))
