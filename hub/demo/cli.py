"""servicehub demo: seed demo customers, conversations, an admin and a token."""

from __future__ import annotations

from hub.cli.common import migrated_engine


def cmd_demo(args, settings) -> int:
    from hub.demo.seed import seed

    creds = seed(migrated_engine(settings), settings.data_dir)
    print("demo data seeded")
    print(f"admin login:  {creds['admin_email']} / {creds['admin_password']}")
    print(f"API token (integration): {creds['api_token']}")
    print(f"(kept in {settings.data_dir / 'demo-credentials.json'})")
    return 0


def add_commands(sub) -> None:
    """Register `demo` on the servicehub parser."""
    sub.add_parser("demo", help="seed demo customers, conversations, an admin and a token").set_defaults(func=cmd_demo)
