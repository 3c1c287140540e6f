"""Who works on what: teams, availability and automatic assignment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.contract.faces import public_names

# What other capabilities may use, by name -> the module that holds it. They import these as
# `from hub.assignment import NAME`, never from the modules themselves (the layering contract in
# pyproject.toml); each module is imported on first use, so no import cycle runs through here.
_PUBLIC = {
    "add_member": "hub.assignment.rules",
    "assign": "hub.assignment.rules",
    "create_team": "hub.assignment.rules",
    "is_available": "hub.assignment.rules",
    "list_teams": "hub.assignment.rules",
    "pick_agent": "hub.assignment.rules",
    "remove_member": "hub.assignment.rules",
    "set_availability": "hub.assignment.rules",
    "sticky_agent": "hub.assignment.rules",
}

__all__ = [
    "add_member",
    "assign",
    "create_team",
    "is_available",
    "list_teams",
    "pick_agent",
    "remove_member",
    "set_availability",
    "sticky_agent",
]

__getattr__, __dir__ = public_names(__name__, _PUBLIC)

if TYPE_CHECKING:
    from hub.assignment.rules import (
        add_member,
        assign,
        create_team,
        is_available,
        list_teams,
        pick_agent,
        remove_member,
        set_availability,
        sticky_agent,
    )
