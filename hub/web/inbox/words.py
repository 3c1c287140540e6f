"""Words the inbox shows that are values of data, not text of a template: statuses, priorities,
segments, the list's views and sorts. Templates show them through `_(value)`, which finds them in
the catalog; they are listed here, marked with N_, so that `make messages` extracts them. A value
missing here is shown as it is (in English), never lost."""

from __future__ import annotations

from hub.contract.i18n import N_

STATUSES = (N_("open"), N_("pending"), N_("resolved"), N_("closed"))
PRIORITIES = (N_("low"), N_("normal"), N_("high"), N_("urgent"))
SEGMENTS = (N_("general"), N_("potential"), N_("key"))
# hub.conversations.inbox.VIEWS and SORTS, as the list shows them
VIEWS = (N_("Mine"), N_("Unassigned"), N_("All open"), N_("SLA due soon"), N_("All"))
SORTS = (N_("Last activity"), N_("Priority"))
