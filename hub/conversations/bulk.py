"""One change to several conversations at once (the list's checkboxes, the API's bulk route):
assign, resolve, tag, untag, snooze. Each conversation goes through the very function a change to
it alone goes through (its checks, its transaction, its side effects) and succeeds or fails on its
own: a guessed or deleted id is reported as not found and changes nothing else. The caller tells
the change listeners (hub/web/changes.py) of each one changed, as after a single change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from hub.contract import clock
from hub.contract.errors import HubError, RejectedInput
from hub.contract.i18n import N_
from hub.contract.principal import Principal
from hub.conversations import snooze as snoozing
from hub.conversations import tags
from hub.conversations.actions import update_conversation

MAX_BULK = 200
ACTIONS = ("assign", "resolve", "tag", "untag", "snooze")
# Whether a change of this kind can start, stop or move SLA timers (hub/web/changes.py).
MOVES_TIMERS = {"assign": True, "resolve": True, "tag": False, "untag": False, "snooze": True}


@dataclass(frozen=True)
class BulkChange:
    action: str
    assignee_id: int | None = None
    tag: str | None = None
    until: datetime | None = None


def check(change: BulkChange, ids: list[int]) -> list[int]:
    """The ids, each once, in the order given; RejectedInput for an unknown action, a missing
    parameter or too many ids (before anything is written)."""
    if change.action not in ACTIONS:
        raise RejectedInput(N_("%(name)s must be one of: %(choices)s"), params={"name": "action", "choices": ", ".join(ACTIONS)})
    unique = list(dict.fromkeys(ids))
    if not unique:
        raise RejectedInput(N_("select at least one conversation"))
    if len(unique) > MAX_BULK:
        raise RejectedInput(N_("at most %(num)s conversations at once"), params={"num": MAX_BULK})
    if any(not isinstance(i, int) or isinstance(i, bool) or i < 1 for i in unique):
        raise RejectedInput(N_("conversation ids are positive whole numbers"))
    if change.action in ("tag", "untag"):
        tags.tag_name(change.tag or "")  # refused here, once, rather than once per conversation
    if change.action == "snooze":
        if change.until is None:
            raise RejectedInput(N_("snooze needs a time"))
        now = clock.now()
        if change.until <= now or change.until - now > snoozing.MAX_SNOOZE:
            raise RejectedInput(N_("a snooze ends in the future, within a year"))
    return unique


def apply_one(engine: Engine, cid: int, change: BulkChange, actor: Principal) -> None:
    """The change to one conversation, through the function a single change uses."""
    if change.action == "assign":
        update_conversation(engine, cid, {"assignee_id": change.assignee_id}, actor)
    elif change.action == "resolve":
        update_conversation(engine, cid, {"status": "resolved"}, actor)
    elif change.action == "tag":
        tags.add_tag(engine, cid, change.tag or "", actor)
    elif change.action == "untag":
        tags.remove_tag(engine, cid, change.tag or "", actor)
    elif change.action == "snooze":
        snoozing.snooze(engine, cid, change.until, actor)


def apply(engine: Engine, ids: list[int], change: BulkChange, actor: Principal, *,
          said: Callable[[HubError], str] = lambda exc: exc.message) -> dict[str, Any]:
    """{"done": n, "results": [{"id", "ok", "error": {"code", "message"} | None}]} in the order
    of the ids; a failure on one (not found, an inactive agent) leaves the others as they went.
    `said` words each failure (the inbox: in the agent's language; the API: English)."""
    results = []
    for cid in check(change, ids):
        try:
            apply_one(engine, cid, change, actor)
        except HubError as exc:
            results.append({"id": cid, "ok": False, "error": {"code": exc.code, "message": said(exc)}})
        else:
            results.append({"id": cid, "ok": True, "error": None})
    return {"done": sum(r["ok"] for r in results), "results": results}
