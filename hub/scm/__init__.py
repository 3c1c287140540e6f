"""Order and stock questions: the SCM back end, automatic answers and drafts, escalation to the back office, demand."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.contract.faces import public_names

# What other capabilities may use, by name -> the module that holds it. They import these as
# `from hub.scm import NAME`, never from the modules themselves (the layering contract in
# pyproject.toml); each module is imported on first use, so no import cycle runs through here.
_PUBLIC = {
    "RoutingWorker": "hub.scm.autoanswer",
    "ScmServices": "hub.scm.backend",
    "build_services": "hub.scm.backend",
    "create_escalation": "hub.scm.escalation",
    "escalation_target": "hub.scm.escalation",
}

__all__ = [
    "RoutingWorker",
    "ScmServices",
    "build_services",
    "create_escalation",
    "escalation_target",
]

__getattr__, __dir__ = public_names(__name__, _PUBLIC)

if TYPE_CHECKING:
    from hub.scm.autoanswer import RoutingWorker
    from hub.scm.backend import ScmServices, build_services
    from hub.scm.escalation import create_escalation, escalation_target
