"""Account lock-out: after repeated failed sign-ins an account refuses sign-in for a while.

The login rate limit counts per client address; this counts per account, so a password guesser
spreading over many addresses still stops after a few tries. The lock is on the email typed,
known or not, so the answer never tells whether an account exists. A successful sign-in, or a
new password (set by an admin), clears the count.

The count is kept per account_key(): every way of writing one address (angle brackets, a final
dot, fullwidth or other compatibility characters, an IDN domain in Unicode or ASCII, any case)
counts as one account, so a guesser cannot get five more tries by writing the address another way.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import idna
from sqlalchemy import Engine, delete, select, update

from hub.contract.errors import TooManyRequests
from hub.contract.i18n import N_
from hub.store.db import read_tx, write_tx
from hub.store.models import LoginLock, utcnow
from hub.store.sql import insert_ignoring_conflict

lock_t = LoginLock.__table__


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5  # failures in a row (within `window`) that lock the account
    window: timedelta = timedelta(minutes=15)
    lock_for: timedelta = timedelta(minutes=15)


class AccountLocked(TooManyRequests):
    """Too many failed sign-ins for this account: wait `retry_after` seconds (or ask an admin)."""

    code = "account_locked"


def account_key(email: str) -> str:
    """The one form of a typed address that the lock-out counts by: NFKC, whitespace and angle
    brackets dropped, no final dot on the domain, the domain IDNA-encoded (UTS 46), lowercase.
    Never raises: what is not an address is counted by its NFKC, lowercase self."""
    value = "".join(unicodedata.normalize("NFKC", (email or "")[:1000]).split())
    value = value.strip("<>")
    local, sep, domain = value.rpartition("@")
    if not sep:
        return value.casefold()[:320]
    domain = domain.rstrip(".")
    try:
        domain = idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        pass
    try:
        local = idna.uts46_remap(local, std3_rules=False, transitional=False)  # drops ignorables (soft hyphens...)
    except (idna.IDNAError, UnicodeError, ValueError):
        pass
    return f"{local}@{domain}".casefold()[:320]


def _aware(when: datetime | None) -> datetime | None:

    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when


def check(engine: Engine, email: str, *, now: datetime | None = None) -> None:
    """Raise AccountLocked while the account is locked."""
    now = now or utcnow()
    with read_tx(engine) as conn:
        until = conn.execute(select(lock_t.c.locked_until).where(lock_t.c.email == account_key(email))).scalar()
    until = _aware(until)
    if until is not None and until > now:
        minutes = max(1, round((until - now).total_seconds() / 60))
        raise AccountLocked(
            N_("this account is locked after too many failed sign-ins; try again in about %(minutes)s min, "
               "or ask an admin to reset the password"), params={"minutes": minutes},
            retry_after=(until - now).total_seconds(),
        )


def record_failure(engine: Engine, email: str, policy: LockoutPolicy = LockoutPolicy(), *,
                   now: datetime | None = None) -> bool:
    """Count a failed sign-in; True when this failure locked the account."""
    now = now or utcnow()
    key = account_key(email)
    if not key:
        return False
    with write_tx(engine) as conn:
        insert_ignoring_conflict(conn, lock_t, {"email": key, "failures": 0, "first_failure_at": now, "updated_at": now})
        row = conn.execute(select(lock_t).where(lock_t.c.email == key)).one()
        first, until = _aware(row.first_failure_at), _aware(row.locked_until)
        if until is not None and until > now:
            return False  # locked already (the caller checks first; a race lands here)
        if until is not None or now - first > policy.window:
            failures, first = 1, now  # an expired lock or an old streak: count again
        else:
            failures = row.failures + 1
        locks = failures >= policy.max_failures
        conn.execute(
            update(lock_t).where(lock_t.c.email == key).values(
                failures=0 if locks else failures,
                first_failure_at=first,
                locked_until=now + policy.lock_for if locks else None,
                updated_at=now,
            )
        )
    return locks


def clear(engine: Engine, email: str) -> None:
    """A successful sign-in or a new password: forget the failures (and any lock)."""
    with write_tx(engine) as conn:
        conn.execute(delete(lock_t).where(lock_t.c.email == account_key(email)))


def locked_accounts(engine: Engine, *, now: datetime | None = None) -> list[dict]:
    """Accounts locked right now, for the admin pages."""
    now = now or utcnow()
    with read_tx(engine) as conn:
        rows = conn.execute(select(lock_t.c.email, lock_t.c.locked_until).where(lock_t.c.locked_until > now)).all()
    return [{"email": r.email, "locked_until": _aware(r.locked_until)} for r in rows]
