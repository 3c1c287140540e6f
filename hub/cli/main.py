"""The servicehub command: serve, migrate, demo, create-agent, create-token."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys

from pydantic import ValidationError

from hub.contract.errors import ConfigError, HubError
from hub.config.settings import load_settings


def _engine(settings):
    from hub.store.db import make_engine
    from hub.store.migrate import upgrade

    upgrade(settings.effective_database_url)
    return make_engine(settings.effective_database_url, pool_size=2)


def cmd_migrate(args, settings) -> int:
    from hub.store.migrate import upgrade

    upgrade(settings.effective_database_url)
    print(f"store migrated: {settings.effective_database_url.split('@')[-1]}")
    return 0


def cmd_serve(args, settings) -> int:
    from aiohttp import web

    from hub.web.app import create_app

    host = args.host or settings.host
    port = args.port or settings.port
    app = create_app(settings, role=args.role)
    print(f"servicehub ({args.role}) listening on http://{host}:{port}", flush=True)
    # SIGTERM drains (hub/runtime/roles.py): requests in hand get up to drain_seconds to finish.
    web.run_app(app, host=host, port=port, print=None, access_log=None, shutdown_timeout=args.drain_seconds)
    return 0


def cmd_demo(args, settings) -> int:
    from hub.demo.seed import seed

    creds = seed(_engine(settings), settings.data_dir)
    print("demo data seeded")
    print(f"admin login:  {creds['admin_email']} / {creds['admin_password']}")
    print(f"API token (integration): {creds['api_token']}")
    print(f"(kept in {settings.data_dir / 'demo-credentials.json'})")
    return 0


def cmd_create_agent(args, settings) -> int:
    from hub.auth.accounts import create_agent

    password = _password(args)
    if password is None:
        return 2
    agent_id = create_agent(_engine(settings), args.email, password, role=args.role, name=args.name)
    print(f"agent {agent_id} created: {args.email} ({args.role})")
    return 0


def _password(args) -> str | None:
    """From --password, else stdin when it is not a terminal, else prompted twice."""
    if args.password is not None:
        return args.password
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("password: ")
    if getpass.getpass("again: ") != password:
        print("the passwords differ", file=sys.stderr)
        return None
    return password


def cmd_set_password(args, settings) -> int:
    from hub.auth.accounts import set_password

    password = _password(args)
    if password is None:
        return 2
    from hub.auth import lockout

    engine = _engine(settings)
    set_password(engine, args.email, password)
    lockout.clear(engine, args.email)  # a new password is how an admin unlocks a locked account
    print(f"password of {args.email} changed; their sessions are ended; any sign-in lock is lifted")
    return 0


def cmd_create_token(args, settings) -> int:
    from hub.auth.accounts import create_token

    token = create_token(_engine(settings), args.name, role=args.role)
    print(f"token {args.name!r} ({args.role}) created; it is shown once:")
    print(token)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="servicehub", description="Omnichannel customer-service hub")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the hub (web app, inbox API, channels, outbox worker)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--role", choices=["all", "web", "worker"], default="all",
                   help="web: HTTP only; worker: the background loops only (its listener serves /livez, /readyz, "
                        "/healthz and /metrics); all: both (default)")
    p.add_argument("--drain-seconds", type=float, default=30.0,
                   help="on SIGTERM, how long requests in hand may take to finish before the process exits")
    p.set_defaults(func=cmd_serve)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("demo", help="seed demo customers, conversations, an admin and a token").set_defaults(func=cmd_demo)
    p = sub.add_parser("create-agent", help="create an agent login")
    p.add_argument("email")
    p.add_argument("--role", choices=["agent", "admin"], default="agent")
    p.add_argument("--name")
    p.add_argument("--password", help="prompted for (or read from stdin) when absent")
    p.set_defaults(func=cmd_create_agent)
    p = sub.add_parser("set-password", help="give an agent a new password (ends their sessions)")
    p.add_argument("email")
    p.add_argument("--password", help="prompted for (or read from stdin) when absent")
    p.set_defaults(func=cmd_set_password)
    p = sub.add_parser("create-token", help="create an API token (printed alone on the last line)")
    p.add_argument("name")
    p.add_argument("--role", choices=["integration", "backoffice"], required=True)
    p.set_defaults(func=cmd_create_token)
    from hub.kb import cli as kb_cli
    from hub.privacy import cli as privacy_cli
    from hub.scm import cli as scm_cli
    from hub.segments import cli as segments_cli

    kb_cli.add_commands(sub)
    scm_cli.add_commands(sub)
    segments_cli.add_commands(sub)
    privacy_cli.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiosmtpd logs every connection and message of the receiver at INFO: lines by the thousand
    # in a burst of mail, and a good share of the receiver's time.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    try:
        settings = load_settings()
    except ValidationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        return args.func(args, settings)
    except HubError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
