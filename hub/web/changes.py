"""What happens after an agent changed a conversation, whatever the door they came through.

The REST API and the inbox pages both call `conversation_changed` after a reply, a note or an
update; each capability that cares registers a listener (the SLA worker recomputes timers when
they moved, the live inbox tells the open pages). So a side effect is part of the action, not of
one door's handler.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from hub.web.keys import CONVERSATION_LISTENERS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConversationChange:
    """conversation_id changed; moves_timers: the change can start, stop or move SLA timers (status,
    priority, assignee, a reply to the customer), not a note."""

    conversation_id: int
    moves_timers: bool = True


def conversation_changed(app: web.Application, conversation_id: int, *, moves_timers: bool = True) -> None:
    """Tell every listener the app's capabilities registered; a listener's bug is logged, never raised
    (the change is stored already)."""
    change = ConversationChange(conversation_id, moves_timers)
    for listener in app.get(CONVERSATION_LISTENERS, ()):
        try:
            listener(change)
        except Exception:
            log.exception("conversation listener failed on conversation %s", conversation_id)
