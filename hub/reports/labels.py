"""Reports as people read them: a label for every column (marked for translation; the page translates them) ("First response, median" rather than
first_response_p50_s) and values in human units ("48 min", "2 h 5 min", "1 d 3 h"). The JSON and
CSV keep the column names and raw seconds, for programs; the page and the charts use these."""

from __future__ import annotations

from typing import Any

from hub.contract.i18n import N_
from hub.contract.i18n import gettext as _

LABELS = {
    "day": N_("Day"), "channel": N_("Channel"), "inbound_messages": N_("Messages received"), "new_conversations": N_("New conversations"),
    "first_response_count": N_("Answered"), "first_response_p50_s": N_("First response, median"),
    "first_response_p90_s": N_("First response, 90th percentile"), "resolution_count": N_("Resolved"),
    "resolution_p50_s": N_("Resolution, median"), "resolution_p90_s": N_("Resolution, 90th percentile"),
    "first_response_met": N_("First response on time"), "first_response_due": N_("First response targets"),
    "first_response_pct": N_("First response on time, %"), "resolution_met": N_("Resolved on time"), "resolution_due": N_("Resolution targets"),
    "resolution_pct": N_("Resolved on time, %"), "dimension": N_("By"), "key": N_("Key"), "label": N_("Name"), "answered": N_("Answers"),
    "average": N_("Average score"), "satisfied": N_("Satisfied (4–5)"), "csat_pct": N_("Satisfied, %"), "intent": N_("Topic"),
    "conversations": N_("Conversations"), "share_pct": N_("Share, %"), "sku": N_("SKU"), "product_name": N_("Product"),
    "asked": N_("Asked about"), "unavailable": N_("Asked while out of stock"),
}


def label(column: str) -> str:
    return LABELS.get(column, column.replace("_", " ").capitalize())


def duration(seconds: float | None) -> str:
    """Seconds in the two largest units that matter: "45 s", "48 min", "2 h 5 min", "1 d 3 h"."""
    if seconds is None:
        return "–"
    s = max(0, round(float(seconds)))
    if s < 60:
        return _("%(s)s s") % {"s": s}
    minutes = s // 60
    if minutes < 60:
        return _("%(min)s min") % {"min": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return _("%(h)s h %(min)s min") % {"h": hours, "min": minutes} if minutes else _("%(h)s h") % {"h": hours}
    days, hours = divmod(hours, 24)
    return _("%(d)s d %(h)s h") % {"d": days, "h": hours} if hours else _("%(d)s d") % {"d": days}


# Columns whose values are words of the data (a channel, a status), shown in the reader's language
# as the inbox shows them (hub/web/inbox/words.py lists them for the catalog).
WORD_COLUMNS = ("channel", "status", "priority", "segment")


def cell(column: str, value: Any) -> str:
    """One value of a report as the page shows it."""
    if value is None:
        return "–"
    if column in WORD_COLUMNS and isinstance(value, str):
        return _(value.replace("_", " "))
    if column.endswith("_s"):
        return duration(value)
    if column.endswith("_pct"):
        return f"{float(value):.1f} %"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def table(report: dict[str, Any]) -> dict[str, Any]:
    """The report's columns as labels and its rows as text, plus which columns are numbers."""
    columns = report["columns"]
    numeric = {c for c in columns if any(isinstance(r.get(c), int | float) and not isinstance(r.get(c), bool) for r in report["rows"])}
    return {"headers": [label(c) for c in columns], "numeric": [c in numeric for c in columns],
            "rows": [[cell(c, r.get(c)) for c in columns] for r in report["rows"]]}
