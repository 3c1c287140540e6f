"""servicehub intents ... and scm ...: evaluate intent detection, ask the back end from the shell."""

from __future__ import annotations


def cmd_intents_eval(args, settings) -> int:
    from knowledge.intents_eval import run_eval

    return run_eval(args)


def add_commands(sub) -> None:
    """Register `intents eval` (and any scm commands) on the servicehub parser."""
    from knowledge.intents_eval import add_eval_arguments

    intents = sub.add_parser("intents", help="intent detection (order status, stock, returns, complaints)")
    intents_sub = intents.add_subparsers(dest="intents_command", required=True)
    p = intents_sub.add_parser("eval", help="precision and recall of intent detection on labelled queries (JSONL)")
    add_eval_arguments(p)
    p.set_defaults(func=cmd_intents_eval)
