"""Conversations: what agents read, list, search, change and answer.

    queries.py     one conversation (its row, its messages with sender and delivery)
    listing.py     lists of conversations (filters, activity or priority order, SLA due soon)
    cursors.py     the keyset cursors of those lists
    search/        q=: substrings of subject/customer/address, words in messages, the page strategy
    inbox.py       the inbox list as an agent sees it (views, previews, waiting, unread, SLA labels)
    tags.py        tags on conversations (folded names, the list's tag= filter)
    snooze.py      snooze until a time, and the worker that opens them again
    bulk.py        one change to several conversations, each through its single-change function
    actions.py     status / priority / assignee changes with their side effects; internal notes
    replies.py     replies: recipient resolution, outbound messages and their outbox rows
    continuity.py  the customer's related conversations; moving a message, merging two, undoing either
    timeline.py, read_marks.py, presence.py, mentions.py, macros.py, versions.py

Other capabilities (the web routes, SCM, CSAT) may use the names below as `conversations.NAME`
after `from hub import conversations`, without knowing which module holds each; they are looked
up on first use, so importing one submodule does not import them all (and no import cycle runs
through this package).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.contract.faces import public_names

# What other capabilities may use, by name -> the module that holds it. They import these as
# `from hub.conversations import NAME`, never from the modules themselves (the layering contract in
# pyproject.toml); each module is imported on first use, so no import cycle runs through here.
_PUBLIC = {
    "iso": "hub.contract.timefmt",
    "add_note": "hub.conversations.actions",
    "update_conversation": "hub.conversations.actions",
    "ConversationFilter": "hub.conversations.listing",
    "MAX_PAGE": "hub.conversations.listing",
    "as_phone": "hub.conversations.listing",
    "list_conversations": "hub.conversations.listing",
    "fold": "hub.conversations.mentions",
    "conversation_state": "hub.conversations.queries",
    "get_conversation": "hub.conversations.queries",
    "get_message": "hub.conversations.queries",
    "require_conversation": "hub.conversations.queries",
    "ANSWERED_BY_EMAIL": "hub.conversations.replies",
    "queue_outbound": "hub.conversations.replies",
    "recipient": "hub.conversations.replies",
    "reply": "hub.conversations.replies",
    "reply_recipient": "hub.conversations.replies",
    "customers_holding": "hub.conversations.search.substrings",
    "SnoozeWorker": "hub.conversations.snooze",
    "bumped": "hub.conversations.versions",
    "bumped_if": "hub.conversations.versions",
}

__all__ = [
    "ANSWERED_BY_EMAIL",
    "ConversationFilter",
    "MAX_PAGE",
    "SnoozeWorker",
    "add_note",
    "as_phone",
    "bumped",
    "bumped_if",
    "conversation_state",
    "customers_holding",
    "fold",
    "get_conversation",
    "get_message",
    "iso",
    "list_conversations",
    "queue_outbound",
    "recipient",
    "reply",
    "reply_recipient",
    "require_conversation",
    "update_conversation",
]

__getattr__, __dir__ = public_names(__name__, _PUBLIC)

if TYPE_CHECKING:
    from hub.contract.timefmt import iso
    from hub.conversations.actions import add_note, update_conversation
    from hub.conversations.listing import MAX_PAGE, ConversationFilter, as_phone, list_conversations
    from hub.conversations.mentions import fold
    from hub.conversations.queries import conversation_state, get_conversation, get_message, require_conversation
    from hub.conversations.replies import ANSWERED_BY_EMAIL, queue_outbound, recipient, reply, reply_recipient
    from hub.conversations.search.substrings import customers_holding
    from hub.conversations.snooze import SnoozeWorker
    from hub.conversations.versions import bumped, bumped_if
