"""servicehub segments ...: recompute customer value and segments."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from hub.contract.errors import ConfigError


def add_commands(sub) -> None:
    """Register `segments recompute` on the servicehub parser."""
    parser = sub.add_parser("segments", help="customer value and segments (general, potential, key)")
    seg_sub = parser.add_subparsers(dest="segments_command", required=True)
    p = seg_sub.add_parser(
        "recompute",
        help="recompute order value, order count and contacts, and the segments, now",
        description="Asks the configured SCM back end for each customer's orders over the window "
        "(SERVICEHUB_SEGMENTS__WINDOW_DAYS) and counts their contacts in the store. Segments set by hand stay. "
        "A back end that is down keeps the previous figures; the command then stops and says so (exit 1).",
    )
    p.add_argument("--customer", type=int, metavar="ID", help="only this customer (prints their figures)")
    p.set_defaults(func=cmd_recompute)


def cmd_recompute(args, settings) -> int:
    return asyncio.run(_recompute(args, settings))


async def _recompute(args, settings) -> int:
    from hub.segments import value as segments
    from hub.store.db import make_engine
    from hub.store.migrate import upgrade

    upgrade(settings.effective_database_url)
    engine = make_engine(settings.effective_database_url, pool_size=2)
    backend = None
    if settings.scm.enabled:
        # The back end itself (adapters.registry), as the SCM capability builds it: value needs
        # only customers' orders, none of SCM's answering.
        from adapters.registry import BackendMisconfigured, build_backend

        try:
            backend = build_backend(settings.scm.backend, data_dir=Path(settings.data_dir))
        except BackendMisconfigured as exc:
            raise ConfigError(str(exc)) from None
    try:
        if args.customer is not None:
            segments.request_recompute(engine, args.customer, "cli")
            out = await segments.recompute_customer(engine, backend, settings.segments, args.customer)
            print(json.dumps({"customer_id": args.customer, **out}, indent=2))
            return 1 if out["source"] == "stale" else 0
        run = await segments.recompute_all(engine, backend, settings.segments, actor="cli")
        print(f"{run.computed} customers recomputed")
        if run.stale:
            print("the SCM back end is unavailable: the remaining customers keep their figures; "
                  "the hub's worker retries them")
            return 1
        return 0
    finally:
        if backend is not None:
            await backend.close()
        engine.dispose()
