"""servicehub customer export|erase ...: privacy requests."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def add_commands(sub) -> None:
    """Register `customer export` and `customer erase` on the servicehub parser."""
    parser = sub.add_parser("customer", help="privacy requests: export or erase everything about a customer")
    c_sub = parser.add_subparsers(dest="customer_command", required=True)

    p = c_sub.add_parser("export", help="everything held about a customer, as JSON (attachments base64)")
    p.add_argument("id", type=int)
    p.add_argument("--out", type=Path, help="write to this file (default: standard output)")
    p.set_defaults(func=cmd_export)

    p = c_sub.add_parser("erase", help="erase a customer's personal data, keeping aggregate figures (cannot be undone)")
    p.add_argument("id", type=int)
    p.add_argument("--reason", help="why (a request reference), for the audit log")
    p.add_argument("--yes", action="store_true", help="confirm: erasing cannot be undone")
    p.set_defaults(func=cmd_erase)


def _store(settings):
    from hub.store.blobs import BlobStore
    from hub.store.db import make_engine
    from hub.store.migrate import upgrade

    upgrade(settings.effective_database_url)
    return make_engine(settings.effective_database_url, pool_size=2), BlobStore(settings.blob_dir)


def cmd_export(args, settings) -> int:
    from hub.privacy.requests import export_customer

    engine, blobs = _store(settings)
    try:
        data = export_customer(engine, args.id, blobs=blobs, actor="cli")
    finally:
        engine.dispose()
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
        args.out.chmod(0o600)  # it is personal data
        print(f"customer {args.id} exported to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text + "\n")
    return 0


def cmd_erase(args, settings) -> int:
    from hub.privacy.requests import erase_customer

    if not args.yes:
        print(f"erasing customer {args.id} cannot be undone: run again with --yes", file=sys.stderr)
        return 2
    engine, blobs = _store(settings)
    try:
        result = erase_customer(engine, blobs, args.id, "cli", reason=args.reason, outbound_log=settings.outbound_log)
    finally:
        engine.dispose()
    counts = ", ".join(f"{k} {v}" for k, v in result["erased"].items())
    print(f"customer {args.id} erased ({counts}); {result['conversations_kept']} conversations kept, anonymised")
    return 0
