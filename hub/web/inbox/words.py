"""Words the inbox shows that are values of data, not text of a template: statuses, priorities,
segments, the list's views and sorts. Templates show them through `_(value)`, which finds them in
the catalog; they are listed here, marked with N_, so that `make messages` extracts them. A value
missing here is shown as it is (in English), never lost."""

from __future__ import annotations

import re

from hub.contract.i18n import N_, gettext

STATUSES = (N_("open"), N_("pending"), N_("resolved"), N_("closed"))
PRIORITIES = (N_("low"), N_("normal"), N_("high"), N_("urgent"))
SEGMENTS = (N_("general"), N_("potential"), N_("key"))
# hub.conversations.inbox.VIEWS and SORTS, as the list shows them
VIEWS = (N_("Mine"), N_("Unassigned"), N_("All open"), N_("SLA due soon"), N_("Snoozed"), N_("All"))
SORTS = (N_("Last activity"), N_("Priority"))
# hub.conversations.snooze.PRESETS
SNOOZE_PRESETS = (N_("Later today"), N_("Tomorrow morning"), N_("Next week"))
# The fixed reasons of hub.csat.surveys for no survey on resolve (the others name a channel or flags
# and stay English).
SURVEY_REASONS = (N_("surveys are off"), N_("no message from the customer"), N_("a survey was sent for this conversation before"),
                  N_("no agent has replied in this conversation"))
# The fixed reasons of hub.scm.autoanswer for a draft instead of an answer, as _facts.html shows
# them (underscores as spaces); order_<state> and error codes stay as they are.
DRAFT_REASONS = (N_("no order reference"), N_("too many orders"), N_("privacy"), N_("unknown order"), N_("no product"),
                 N_("too many products"), N_("unknown product"), N_("nothing to answer"), N_("no way to answer"),
                 N_("partly answered"), N_("review"))


# Notifications are stored as English sentences (hub/notifications: one text for every reader, and
# what an older row says stays readable); they are translated when shown, by their known patterns.
# A text that fits none (a future kind) is shown as stored.
_NOTIFICATIONS = (
    (re.compile(r"Conversation #(?P<id>\d+) was assigned to you \((?P<reason>.*)\)", re.S),
     N_("Conversation #%(id)s was assigned to you (%(reason)s)")),
    (re.compile(r"Conversation #(?P<id>\d+) was assigned to you"), N_("Conversation #%(id)s was assigned to you")),
    (re.compile(r"Conversation #(?P<id>\d+) is back from snooze"), N_("Conversation #%(id)s is back from snooze")),
    (re.compile(r"SLA warning on conversation #(?P<id>\d+): (?P<timer>first response|resolution) due (?P<due>.*)"),
     N_("SLA warning on conversation #%(id)s: %(timer)s due %(due)s")),
    (re.compile(r"(?P<author>.*?) mentioned you in conversation #(?P<id>\d+): (?P<excerpt>.*)", re.S),
     N_("%(author)s mentioned you in conversation #%(id)s: %(excerpt)s")),
)
TIMERS = (N_("first response"), N_("resolution"))


def notification_text(text: str) -> str:
    """A stored notification's text in the current language."""
    for pattern, message in _NOTIFICATIONS:
        match = pattern.fullmatch(text)
        if match:
            values = match.groupdict()
            if "timer" in values:
                values["timer"] = gettext(values["timer"])
            if values.get("author") == "Someone":
                values["author"] = gettext("Someone")
            return gettext(message) % values
    return text


def notifications_shown(data: dict) -> dict:
    """The notifications list (hub.notifications.list_for) with each text in the current language."""
    return {**data, "items": [{**n, "text": notification_text(n["text"])} for n in data.get("items", [])]}
