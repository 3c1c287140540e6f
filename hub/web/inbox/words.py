"""Words the inbox shows that are values of data, not text of a template: statuses, priorities,
segments, the list's views and sorts. Templates show them through `_(value)`, which finds them in
the catalog; they are listed here, marked with N_, so that `make messages` extracts them. A value
missing here is shown as it is (in English), never lost."""

from __future__ import annotations

import re

from hub.contract.i18n import N_, Word, fill, gettext

STATUSES = (N_("open"), N_("pending"), N_("resolved"), N_("closed"))
PRIORITIES = (N_("low"), N_("normal"), N_("high"), N_("urgent"))
SEGMENTS = (N_("general"), N_("potential"), N_("key"))
# hub.conversations.inbox.VIEWS and SORTS, as the list shows them
VIEWS = (N_("Mine"), N_("Unassigned"), N_("All open"), N_("SLA due soon"), N_("Snoozed"), N_("All"))
SORTS = (N_("Last activity"), N_("Priority"))
# hub.conversations.snooze.PRESETS
SNOOZE_PRESETS = (N_("Later today"), N_("Tomorrow morning"), N_("Next week"))
# The reasons of hub.csat.surveys for no survey on resolve are marked there; the flags of the
# customer's last message they may name (hub.contract.messages AUTOMATED_FLAGS, underscores as spaces).
AUTOMATED_FLAGS = (N_("auto reply"), N_("bounce"), N_("bulk"), N_("own address"))
# Channels (conversations, messages) and the kinds of address a customer has (identities).
CHANNELS = (N_("email"), N_("telegram"), N_("voice"), N_("webform"), N_("phone"), N_("web"))
# adapters/base.py ORDER_STATES as the facts and the customer panel show them (underscores as
# spaces), and the words back ends give an order line's state (any other is shown as it is).
ORDER_STATES = (N_("pending"), N_("confirmed"), N_("processing"), N_("shipped"), N_("delivered"), N_("cancelled"),
                N_("returned"), N_("on hold"))
LINE_STATES = (N_("backordered"), N_("partially shipped"), N_("reserved"), N_("in stock"), N_("to ship"), N_("open"),
               N_("done"), N_("canceled"))
# hub.store.models EscalationStatus (underscores as spaces) and hub.outbox DELIVERY_STATE (a reply's delivery).
ESCALATION_STATUSES = (N_("queued"), N_("sent"), N_("acknowledged"), N_("in progress"), N_("resolved"), N_("failed"))
DELIVERY_STATES = (N_("queued"), N_("sending"), N_("sent"), N_("failed"), N_("retrying"))
# The kinds of a timeline's entries (hub.conversations.timeline), as a tag on each.
ENTRY_KINDS = (N_("inbound"), N_("reply"), N_("note"), N_("automatic"), N_("event"))

# Why the back end gave no fact (adapters/base.py BackendError codes): the adapter's own message
# (English, from the order system) stays beside it for whoever needs the detail.
FACT_ERRORS = {
    "unknown_order": N_("the order system does not know this order"),
    "not_the_customers_order": N_("this order belongs to someone else: nothing about it was told"),
    "unknown_product": N_("the order system does not know this product"),
    "backend_unavailable": N_("the order system did not answer; the hub tries again later"),
    "unsupported_call": N_("the order system cannot answer this"),
    "backend_error": N_("the order system could not answer"),
}


def shown(value: str | None) -> str:
    """A value of the data (a state, a channel) in the current language: underscores as spaces,
    translated when the catalog has it, else as it is."""
    if not value:
        return ""
    text = str(value).replace("_", " ")
    return gettext(text)


def draft_reason(reason: str | None) -> str:
    """Why the order answer is a draft, in the current language: a fixed reason, an order's state
    ("order_on_hold"), or the back end's error code."""
    reason = reason or ""
    if reason.startswith("order_"):
        return fill(N_("order %(state)s"), {"state": shown(reason[len("order_"):])})
    if reason in FACT_ERRORS and reason not in ("unknown_order", "unknown_product"):
        return fact_error(reason)
    return shown(reason)


def fact_error(code: str | None) -> str:
    """Why a fact is missing, in the current language; an unknown code is shown as it is."""
    message = FACT_ERRORS.get(code or "")
    return gettext(message) if message else (code or "").replace("_", " ")


# The fixed reasons of hub.scm.autoanswer for a draft instead of an answer, as _facts.html shows
# them (underscores as spaces); order_<state> and the back end's error codes: draft_reason.
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


# The timeline's events (system messages: escalations, moves and merges, assignments, SLA warnings)
# are stored as English sentences too, for the same reasons; translated when shown, by their
# patterns. A reason, a comment or a name inside stays as written.
_EVENTS = (
    (re.compile(r"Escalated to the back office \((?P<target>\w+)\): (?P<reason>.*)", re.S),
     N_("Escalated to the back office (%(target)s): %(reason)s")),
    (re.compile(r"Escalation #(?P<id>\d+) could not be delivered: (?P<error>.*)", re.S),
     N_("Escalation #%(id)s could not be delivered: %(error)s")),
    (re.compile(r"Back office on escalation #(?P<id>\d+): (?P<status>[\w ]+?)(?P<rest>( \(reference .*\))?( — .*)?)", re.S),
     N_("Back office on escalation #%(id)s: %(status)s%(rest)s")),
    (re.compile(r"Message moved here from #(?P<id>\d+) by (?P<who>.*)", re.S), N_("Message moved here from #%(id)s by %(who)s")),
    (re.compile(r"Message moved to #(?P<id>\d+) by (?P<who>.*)", re.S), N_("Message moved to #%(id)s by %(who)s")),
    (re.compile(r"Conversation #(?P<id>\d+) merged into this one by (?P<who>.*)", re.S),
     N_("Conversation #%(id)s merged into this one by %(who)s")),
    (re.compile(r"Merged into #(?P<id>\d+) by (?P<who>.*)", re.S), N_("Merged into #%(id)s by %(who)s")),
    (re.compile(r"The move from #(?P<id>\d+) was undone by (?P<who>.*)", re.S), N_("The move from #%(id)s was undone by %(who)s")),
    (re.compile(r"The merge from #(?P<id>\d+) was undone by (?P<who>.*)", re.S), N_("The merge from #%(id)s was undone by %(who)s")),
    (re.compile(r"The move into #(?P<id>\d+) was undone by (?P<who>.*); the messages are back", re.S),
     N_("The move into #%(id)s was undone by %(who)s; the messages are back")),
    (re.compile(r"The merge into #(?P<id>\d+) was undone by (?P<who>.*); the messages are back", re.S),
     N_("The merge into #%(id)s was undone by %(who)s; the messages are back")),
    (re.compile(r"Assigned to (?P<name>.*) \((?P<reason>.*)\)", re.S), N_("Assigned to %(name)s (%(reason)s)")),
    (re.compile(r"SLA warning \((?P<policy>.*)\): (?P<timer>first response|resolution) due at (?P<due>\S+)"),
     N_("SLA warning (%(policy)s): %(timer)s due at %(due)s")),
    (re.compile(r"SLA breached \((?P<policy>.*)\): (?P<timer>first response|resolution) was due at (?P<due>\S+)"),
     N_("SLA breached (%(policy)s): %(timer)s was due at %(due)s")),
)
# Words inside events: escalation targets, the back office's states (as ESCALATION_STATUSES), "comment".
EVENT_WORDS = (N_("webhook"), N_("backend"), N_("comment"))


def event_text(text: str | None) -> str:
    """A stored timeline event's text in the current language; a text that fits no pattern is
    shown as stored. Only the hub's own words are translated: a reason, a comment or a name stays."""
    if not text:
        return ""
    for pattern, message in _EVENTS:
        match = pattern.fullmatch(text)
        if match:
            values = match.groupdict()
            for word in ("target", "status", "timer"):
                if word in values:
                    values[word] = Word(values[word])
            return fill(message, values)
    return text


def notification_text(text: str) -> str:
    """A stored notification's text in the current language."""
    for pattern, message in _NOTIFICATIONS:
        match = pattern.fullmatch(text)
        if match:
            values = match.groupdict()
            if "timer" in values:
                values["timer"] = Word(values["timer"])
            if values.get("author") == "Someone":
                values["author"] = Word(N_("Someone"))
            return fill(message, values)
    return text


def notifications_shown(data: dict) -> dict:
    """The notifications list (hub.notifications.list_for) with each text in the current language."""
    return {**data, "items": [{**n, "text": notification_text(n["text"])} for n in data.get("items", [])]}
