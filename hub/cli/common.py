"""What several capabilities' commands share: the store, migrated first, and reading a password."""

from __future__ import annotations

import getpass
import sys


def migrated_engine(settings):
    """An engine on the configured store, brought up to the current schema first."""
    from hub.store.db import make_engine
    from hub.store.migrate import upgrade

    upgrade(settings.effective_database_url)
    return make_engine(settings.effective_database_url, pool_size=2)


def read_password(args) -> str | None:
    """From --password, else stdin when it is not a terminal, else prompted twice (None: they differ)."""
    if args.password is not None:
        return args.password
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("password: ")
    if getpass.getpass("again: ") != password:
        print("the passwords differ", file=sys.stderr)
        return None
    return password
