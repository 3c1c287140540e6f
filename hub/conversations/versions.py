"""conversation.version: how a change made on a stale view is told apart from one made on the
current state.

The contract, for every write to the conversation table:
- A write that changes what agents see of a conversation and decide on (status, priority,
  assignee, customer, subject, intent, first response, resolution) sets `version = version + 1` in
  its own UPDATE. The database computes it from the row it updates, so two writers never count
  from the same version, whatever the isolation level.
- A write that may leave all of that as it was (a new message on a conversation already open)
  bumps only where it changes something: `bumped_if(condition on the row as it was)`.
- Derived columns (SLA due times, last_message_at, updated_at) do not count: they follow from the
  others, and bumping for them would refuse agents' changes for no reason an agent could see.
- An agent's change names the version it was made on, and its UPDATE carries
  `WHERE version = :expected`: a change made on a stale page touches no row and is refused
  (hub.conversations.update_conversation), never written over a newer one.
"""

from __future__ import annotations

from sqlalchemy import case

from hub.store.models import Conversation

_version = Conversation.__table__.c.version


def bumped():
    """The SET value of a write that changes what agents see: the stored version plus one."""
    return _version + 1


def bumped_if(condition):
    """The SET value of a write that changes what agents see only where `condition` holds (SET
    expressions read the row as it was before the UPDATE, on both databases)."""
    return case((condition, _version + 1), else_=_version)
