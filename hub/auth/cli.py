"""servicehub create-agent, set-password, create-token: agents' logins and API tokens."""

from __future__ import annotations

from hub.cli.common import migrated_engine, read_password


def cmd_create_agent(args, settings) -> int:
    from hub.auth.accounts import create_agent

    password = read_password(args)
    if password is None:
        return 2
    agent_id = create_agent(migrated_engine(settings), args.email, password, role=args.role, name=args.name)
    print(f"agent {agent_id} created: {args.email} ({args.role})")
    return 0


def cmd_set_password(args, settings) -> int:
    from hub.auth import lockout
    from hub.auth.accounts import set_password

    password = read_password(args)
    if password is None:
        return 2
    engine = migrated_engine(settings)
    set_password(engine, args.email, password)
    lockout.clear(engine, args.email)  # a new password is how an admin unlocks a locked account
    print(f"password of {args.email} changed; their sessions are ended; any sign-in lock is lifted")
    return 0


def cmd_create_token(args, settings) -> int:
    from hub.auth.accounts import create_token

    token = create_token(migrated_engine(settings), args.name, role=args.role)
    print(f"token {args.name!r} ({args.role}) created; it is shown once:")
    print(token)
    return 0


def add_commands(sub) -> None:
    """Register `create-agent`, `set-password` and `create-token` on the servicehub parser."""
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
