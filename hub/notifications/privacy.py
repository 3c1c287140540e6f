"""Privacy part of the notifications: what agents were told about a customer's conversations.

Export: nothing; a notification is the agent's, not the customer's (the notes it points at are
exported with the conversation). Erase: the notifications about their conversations are deleted,
since a mention's excerpt repeats the note's text, which the erasure removes.
"""

from __future__ import annotations

from sqlalchemy import delete

from hub.privacy import Erasure, Export, among, register
from hub.store.models import Notification

notification_t = Notification.__table__


def export_nothing(_: Export) -> None:
    """An agent's notifications are theirs: the customer's part of them is in the conversation."""


def erase_notifications(er: Erasure) -> None:
    er.counts["notifications"] = er.conn.execute(
        delete(notification_t).where(among(notification_t.c.conversation_id, er.subject.conversation_ids))).rowcount


register(Notification, export=export_nothing, erase=erase_notifications)
