"""The servicehub command: serve and migrate, and the commands each capability adds (its cli.py)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pydantic import ValidationError

from hub.config.settings import load_settings
from hub.contract.errors import ConfigError, HubError


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
    # SIGTERM drains (hub/web/process.py): requests in hand get up to drain_seconds to finish.
    web.run_app(app, host=host, port=port, print=None, access_log=None, shutdown_timeout=args.drain_seconds)
    return 0


def _service_commands(sub) -> None:
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


# The modules that add commands, in the order `servicehub --help` lists them: each has
# add_commands(subparsers) and imports what its commands need only when they run, so the
# command line starts fast whatever it is asked.
COMMAND_MODULES = (
    "hub.demo.cli",
    "hub.auth.cli",
    "hub.kb.cli",
    "hub.scm.cli",
    "hub.segments.cli",
    "hub.privacy.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="servicehub", description="Omnichannel customer-service hub")
    sub = parser.add_subparsers(dest="command", required=True)
    _service_commands(sub)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
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
