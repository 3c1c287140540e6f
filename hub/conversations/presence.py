"""Who is looking at which conversation right now, and who is typing: the collision notice.

Kept in memory per web process (it lasts seconds; a lost entry costs a missed notice, not data).
A viewer is registered while their page's live-update stream is open; typing is a short-lived
flag renewed by the page's heartbeat. With several web workers behind a load balancer, agents on
different workers do not see each other (a shared store, e.g. a table, is the way to fix that).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

TYPING_SECONDS = 6.0


@dataclass
class Viewer:
    agent_id: int
    name: str
    streams: int = 0
    typing_until: float = 0.0

    @property
    def typing(self) -> bool:
        return self.typing_until > time.monotonic()


@dataclass
class Presence:
    viewers: dict[int, dict[int, Viewer]] = field(default_factory=dict)  # conversation -> agent -> viewer

    def join(self, conversation_id: int, agent_id: int, name: str) -> None:
        viewer = self.viewers.setdefault(conversation_id, {}).setdefault(agent_id, Viewer(agent_id, name))
        viewer.streams += 1  # the same agent in two tabs counts once, and leaves with the last

    def leave(self, conversation_id: int, agent_id: int) -> None:
        room = self.viewers.get(conversation_id, {})
        viewer = room.get(agent_id)
        if viewer is None:
            return
        viewer.streams -= 1
        if viewer.streams <= 0:
            del room[agent_id]
        if not room:
            self.viewers.pop(conversation_id, None)

    def typing(self, conversation_id: int, agent_id: int, name: str, typing: bool) -> bool:
        """Renew (or end) an agent's typing flag; False when the agent is not viewing it."""
        viewer = self.viewers.get(conversation_id, {}).get(agent_id)
        if viewer is None:
            return False
        viewer.typing_until = time.monotonic() + TYPING_SECONDS if typing else 0.0
        return True

    def of(self, conversation_id: int) -> list[dict]:
        return [
            {"agent_id": v.agent_id, "name": v.name, "typing": v.typing}
            for v in self.viewers.get(conversation_id, {}).values()
        ]
