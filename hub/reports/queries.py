"""Reports: plain functions over the store, one aggregate query (or two) each.

Every report answers the same shape, so that JSON, CSV and the SVG chart are made the same way:
``{"report", "title", "from", "to", "tz", "columns", "rows", ...}`` where `rows` is a list of
flat dicts with the keys in `columns`.

Ranges are whole days in the caller's time zone: ``from`` 00:00 up to the end of ``to`` (local
time, DST included), turned into UTC instants the columns are compared with. The database groups
by local day (or, across a DST change, by hour; see _local_days), exact in every time zone.
Percentiles are computed in Python over the durations the database computed (one float per
conversation): portable, and PostgreSQL's percentile_cont has no SQLite counterpart.

Conversations count in the range they were created in (volume, times, SLA, intents); answers to
the survey in the range they were given; out-of-stock demand by its (UTC) day.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    BigInteger,
    Engine,
    Integer,
    and_,
    case,
    func,
    select,
    text,
)

from hub.contract.errors import NotFound, RejectedInput
from hub.contract.i18n import N_
from hub.reports.tags import tags_report
from hub.store.db import is_sqlite, read_tx
from hub.store.models import Agent, Conversation, Csat, Customer, DemandCount, Message, utcnow
from hub.web.day_range import parse_day_range

conversation_t = Conversation.__table__
message_t = Message.__table__
csat_t = Csat.__table__
customer_t = Customer.__table__
agent_t = Agent.__table__
demand_t = DemandCount.__table__

MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 28
TOP = 20  # rows of the "top" reports
SATISFIED = 4  # a score of 4 or 5 is "satisfied"


# --- the range ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRange:
    start: date  # first local day
    end: date  # last local day, inclusive
    tz: ZoneInfo

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(0), self.tz).astimezone(UTC)

    @property
    def until(self) -> datetime:  # exclusive
        return datetime.combine(self.end + timedelta(days=1), time(0), self.tz).astimezone(UTC)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def head(self, name: str) -> dict[str, Any]:
        return {"report": name, "title": TITLES[name], "from": self.start.isoformat(), "to": self.end.isoformat(),
                "tz": self.tz.key}


def parse_range(raw_from: str | None, raw_to: str | None, raw_tz: str | None, *, now: datetime | None = None) -> ReportRange:
    """from/to as YYYY-MM-DD (default: the last 28 days up to today in `tz`), tz an IANA name
    (default UTC)."""
    tz_name = (raw_tz or "").strip() or "UTC"
    try:
        if len(tz_name) > 64 or tz_name.startswith(("/", ".")) or ".." in tz_name:
            raise ValueError(tz_name)
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RejectedInput(N_("tz must be a time zone name like Europe/Berlin, not %(tz)s"), params={"tz": repr(tz_name[:64])}) from None
    today = (now or utcnow()).astimezone(tz).date()

    start, end = parse_day_range(raw_from, raw_to, today=today, default_days=DEFAULT_RANGE_DAYS, max_days=MAX_RANGE_DAYS)
    if start.year < 1971 or end.year > 9998:
        raise RejectedInput(N_("from and to must be between 1971 and 9998"))
    return ReportRange(start, end, tz)


# --- portable SQL pieces ------------------------------------------------------------------------


def _epoch(engine: Engine, col):
    """Seconds since 1970 of a stored UTC time, as a float."""
    if is_sqlite(engine):
        # UTCDateTime is stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC) on SQLite.
        return (func.julianday(col) - 2440587.5) * 86400.0
    return func.extract("epoch", col)


def _millis(engine: Engine, col):
    """Whole milliseconds since 1970 of a stored UTC time, exactly (rounded, so a time at midnight
    never lands a hair before it)."""
    if is_sqlite(engine):
        # julianday() is ~2.5x faster than strftime('%s') over a year of rows.
        return func.cast(func.round((func.julianday(col) - 2440587.5) * 86400000.0), Integer)
    return func.cast(func.round(func.extract("epoch", col) * 1000), BigInteger)


def _offsets(rng: ReportRange) -> list[tuple[int | None, int]]:
    """The time zone's UTC offsets over the range as (from this instant on, offset in seconds),
    the first from the start: one entry, or one more per DST change (a few a year)."""
    since, until = int(rng.since.timestamp()), int(rng.until.timestamp())

    def offset(t: int) -> int:
        return int(datetime.fromtimestamp(t, rng.tz).utcoffset().total_seconds())

    out: list[tuple[int | None, int]] = [(None, offset(since))]
    t = since
    while t < until:
        step = min(t + 86400, until)
        if offset(step) != out[-1][1]:
            low, high = t, step  # offset(low) is the current one, offset(high) the next
            while high - low > 1:
                mid = (low + high) // 2
                low, high = (mid, high) if offset(mid) == out[-1][1] else (low, mid)
            out.append((high, offset(high)))
        t = step
    return out


def _local_days(engine: Engine, col, rng: ReportRange):
    """(a SQL key to group a stored time by, a function from a key to its local day).

    No DST change in the range: the key is the local day itself (days since 1970: the time plus
    the zone's offset, divided by a day). With changes, the key is the hour (the quarter hour in
    zones whose DST shift is not whole hours) counted on the first offset; local midnights fall on
    its boundaries whatever the offset in force, so each key belongs to one local day, which Python
    tells from its first instant. Either way the time is computed once per row and the database
    returns a few hundred (days) or thousand (hours) groups, exact in every time zone."""
    ms = _millis(engine, col)
    pieces = _offsets(rng)
    first = pieces[0][1]
    if len(pieces) == 1:
        return (ms + first * 1000) // 86_400_000, lambda k: date.fromordinal(EPOCH_ORDINAL + int(k))
    unit = 3_600_000 if all((o - first) % 3600 == 0 for _, o in pieces) else 900_000
    tz = rng.tz
    return (ms + first * 1000) // unit, lambda k: datetime.fromtimestamp((int(k) * unit - first * 1000) / 1000, tz).date()


EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _in_range(col, rng: ReportRange):
    return and_(col >= rng.since, col < rng.until)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (q in 0..1) of an already sorted list."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(sorted_values) - 1)
    value = sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)
    return round(value, 1)


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _channels(rows) -> list[str]:
    return sorted({r for r in rows})


# --- the reports ----------------------------------------------------------------------------------


def volume(engine: Engine, rng: ReportRange) -> dict[str, Any]:
    """Inbound messages and new conversations per local day and channel (days with nothing: 0)."""
    mkey, to_day = _local_days(engine, message_t.c.created_at, rng)
    ckey, _ = _local_days(engine, conversation_t.c.created_at, rng)
    mkey, ckey = mkey.label("k"), ckey.label("k")
    messages = (
        select(mkey, message_t.c.channel, func.count().label("n"))
        # Literally, not as a parameter: then SQLite can use the partial index ix_message_inbound_created.
        .where(text("message.direction = 'inbound'"), _in_range(message_t.c.created_at, rng))
        .group_by(mkey, message_t.c.channel)
    )
    conversations = (
        select(ckey, conversation_t.c.channel, func.count().label("n"))
        .where(_in_range(conversation_t.c.created_at, rng))
        .group_by(ckey, conversation_t.c.channel)
    )
    counts: dict[tuple[date, str], list[int]] = {}
    with read_tx(engine) as conn:
        for which, stmt in ((0, messages), (1, conversations)):
            for key, channel, n in conn.execute(stmt):
                cell = counts.setdefault((to_day(key), channel), [0, 0])
                cell[which] += n
    channels = sorted({c for _, c in counts})
    rows = [
        {"day": d.isoformat(), "channel": c, "inbound_messages": counts.get((d, c), [0, 0])[0],
         "new_conversations": counts.get((d, c), [0, 0])[1]}
        for d in rng.days() for c in channels
    ]
    totals = {c: {"inbound_messages": sum(counts.get((d, c), [0, 0])[0] for d in rng.days()),
                  "new_conversations": sum(counts.get((d, c), [0, 0])[1] for d in rng.days())} for c in channels}
    return {**rng.head("volume"), "columns": ["day", "channel", "inbound_messages", "new_conversations"],
            "rows": rows, "channels": channels, "totals": totals}


def response_times(engine: Engine, rng: ReportRange) -> dict[str, Any]:
    """First-response and resolution times (seconds from the conversation's start), p50 and p90,
    overall and per channel, of the conversations created in the range."""
    created = _epoch(engine, conversation_t.c.created_at)
    # NULL when not answered (resolved) yet: NULL minus a time is NULL on both databases, and a
    # CASE or an extra filter made SQLite twice as slow over a year of conversations.
    first = _epoch(engine, conversation_t.c.first_response_at) - created
    resolved = _epoch(engine, conversation_t.c.resolved_at) - created
    stmt = select(conversation_t.c.channel, first, resolved).where(_in_range(conversation_t.c.created_at, rng))
    by: dict[str, tuple[list[float], list[float]]] = {}
    overall: tuple[list[float], list[float]] = ([], [])
    with read_tx(engine) as conn:
        for channel, fr, res in conn.execute(stmt):
            lists = by.setdefault(channel, ([], []))
            for i, value in ((0, fr), (1, res)):
                if value is not None:
                    value = max(0.0, float(value))  # a reply stamped before the start: clock skew
                    lists[i].append(value)
                    overall[i].append(value)

    def row(channel: str, lists) -> dict[str, Any]:
        fr, res = sorted(lists[0]), sorted(lists[1])
        return {"channel": channel,
                "first_response_count": len(fr), "first_response_p50_s": percentile(fr, 0.5),
                "first_response_p90_s": percentile(fr, 0.9),
                "resolution_count": len(res), "resolution_p50_s": percentile(res, 0.5),
                "resolution_p90_s": percentile(res, 0.9)}

    rows = [row("all", overall)] + [row(c, by[c]) for c in sorted(by)]
    return {**rng.head("response_times"), "columns": list(rows[0]), "rows": rows}


def sla_attainment(engine: Engine, rng: ReportRange, *, now: datetime | None = None) -> dict[str, Any]:
    """Per channel: of the conversations created in the range that had a first-response (resp.
    resolution) target whose outcome is known — answered, or the target passed — how many met it.
    A target still running is not counted (it may yet be met)."""
    columns = ["channel", "first_response_met", "first_response_due", "first_response_pct",
               "resolution_met", "resolution_due", "resolution_pct"]
    now = now or utcnow()
    c = conversation_t.c

    def counted(at, due):
        decided = and_(due.is_not(None), at.is_not(None) | (due < now))
        met = and_(due.is_not(None), at.is_not(None), at <= due)
        return (func.sum(case((met, 1), else_=0)), func.sum(case((decided, 1), else_=0)))

    stmt = (
        select(c.channel, *counted(c.first_response_at, c.first_response_due_at),
               *counted(c.resolved_at, c.resolution_due_at))
        .where(_in_range(c.created_at, rng))
        .where(c.first_response_due_at.is_not(None) | c.resolution_due_at.is_not(None))
        .group_by(c.channel)
    )
    with read_tx(engine) as conn:
        per = {ch: [int(v or 0) for v in vals] for ch, *vals in conn.execute(stmt)}
    total = [sum(v[i] for v in per.values()) for i in range(4)]

    def row(channel, v):
        return {"channel": channel, "first_response_met": v[0], "first_response_due": v[1],
                "first_response_pct": _pct(v[0], v[1]), "resolution_met": v[2], "resolution_due": v[3],
                "resolution_pct": _pct(v[2], v[3])}

    rows = [row("all", total)] + [row(ch, per[ch]) for ch in sorted(per)]
    return {**rng.head("sla"), "columns": columns, "rows": rows}


def csat(engine: Engine, rng: ReportRange) -> dict[str, Any]:
    """Survey answers given in the range, by channel, by agent (see _answer_agent) and by
    customer segment: how many, the average score, how many satisfied (4 or 5) and the CSAT %.
    One pass: the database sums per (channel, agent, segment), a few hundred groups at most, and
    the four breakdowns are added up from those."""
    c = conversation_t.c
    agent = _answer_agent().label("agent")
    stmt = (
        select(c.channel, agent, customer_t.c.segment, func.count().label("n"), func.sum(csat_t.c.score).label("total"),
               func.sum(case((csat_t.c.score >= SATISFIED, 1), else_=0)).label("satisfied"))
        .select_from(csat_t.join(conversation_t, c.id == csat_t.c.conversation_id)
                     .join(customer_t, customer_t.c.id == c.customer_id))
        .where(_in_range(csat_t.c.created_at, rng))
        .group_by(c.channel, agent, customer_t.c.segment)
    )
    sums: dict[tuple[str, str], list[int]] = {}
    with read_tx(engine) as conn:
        for channel, agent_id, segment, n, total, sat in conn.execute(stmt):
            for key in (("all", "all"), ("channel", channel), ("agent", "" if agent_id is None else str(agent_id)),
                        ("segment", segment)):
                cell = sums.setdefault(key, [0, 0, 0])
                cell[0] += int(n)
                cell[1] += int(total or 0)
                cell[2] += int(sat or 0)
        ids = [int(k) for d, k in sums if d == "agent" and k]
        names = dict(conn.execute(select(agent_t.c.id, func.coalesce(agent_t.c.name, agent_t.c.email))
                                  .where(agent_t.c.id.in_(ids))).all()) if ids else {}
    order = {"all": 0, "channel": 1, "agent": 2, "segment": 3}
    rows = []
    for (dimension, key), (n, total, sat) in sorted(
            sums.items(), key=lambda kv: (order[kv[0][0]], kv[0][1] == "", kv[0][1].zfill(12) if kv[0][0] == "agent" else kv[0][1])):
        label = (names.get(int(key), "") if key else "unassigned") if dimension == "agent" else key
        rows.append({"dimension": dimension, "key": key, "label": label, "answered": n, "average": round(total / n, 2),
                     "satisfied": sat, "csat_pct": _pct(sat, n)})
    return {**rng.head("csat"), "columns": ["dimension", "key", "label", "answered", "average", "satisfied", "csat_pct"],
            "rows": rows}


def _answer_agent():
    """The agent an answer counts for: the assignee when the conversation was resolved, as the
    survey recorded it (csat.agent_id), else the conversation's assignee now (answers recorded
    before surveys kept the agent)."""
    return func.coalesce(csat_t.c.agent_id, conversation_t.c.assignee_id)


def intents(engine: Engine, rng: ReportRange, *, limit: int = TOP) -> dict[str, Any]:
    """The most frequent intents (hub/scm/autoanswer.py sets conversation.intent) of the conversations
    created in the range, with their share of the conversations that have one."""
    c = conversation_t.c
    n = func.count().label("n")
    stmt = (select(c.intent, n).where(_in_range(c.created_at, rng), c.intent.is_not(None))
            .group_by(c.intent).order_by(n.desc(), c.intent))
    with read_tx(engine) as conn:
        found = conn.execute(stmt).all()
    total = sum(r.n for r in found)
    rows = [{"intent": r.intent, "conversations": r.n, "share_pct": _pct(r.n, total)} for r in found[:limit]]
    return {**rng.head("intents"), "columns": ["intent", "conversations", "share_pct"], "rows": rows,
            "with_intent": total}


def out_of_stock(engine: Engine, rng: ReportRange, *, limit: int = TOP) -> dict[str, Any]:
    """The products customers asked for most often while they were unavailable (demand_count,
    hub/scm/demand.py; its days are UTC days), with how often they were asked in all."""
    d = demand_t.c
    unavailable = func.sum(d.unavailable).label("unavailable")
    stmt = (
        select(d.sku, func.max(d.product_name).label("product_name"), func.sum(d.asked).label("asked"), unavailable)
        .where(d.day >= rng.start, d.day <= rng.end)
        .group_by(d.sku).having(func.sum(d.unavailable) > 0).order_by(unavailable.desc(), d.sku).limit(limit)
    )
    with read_tx(engine) as conn:
        rows = [{"sku": r.sku, "product_name": r.product_name, "asked": int(r.asked), "unavailable": int(r.unavailable)}
                for r in conn.execute(stmt)]
    return {**rng.head("out_of_stock"), "columns": ["sku", "product_name", "asked", "unavailable"], "rows": rows}


REPORTS: dict[str, Callable[[Engine, ReportRange], dict[str, Any]]] = {
    "volume": volume,
    "response_times": response_times,
    "sla": sla_attainment,
    "csat": csat,
    "intents": intents,
    "out_of_stock": out_of_stock,
    "tags": tags_report,
}
# English here and in the API; the inbox's page shows them in the agent's language (N_ marks them for the catalog).
TITLES = {
    "volume": N_("Volume by channel and day"),
    "response_times": N_("First-response and resolution times"),
    "sla": N_("SLA attainment"),
    "csat": N_("Customer satisfaction (CSAT)"),
    "intents": N_("Top intents"),
    "out_of_stock": N_("Most-asked products that were out of stock"),
    "tags": N_("Conversations by tag"),
}


def run(engine: Engine, name: str, rng: ReportRange) -> dict[str, Any]:
    fn = REPORTS.get(name)
    if fn is None:
        raise NotFound(f"no report {name[:64]!r}; reports: {', '.join(REPORTS)}")
    return fn(engine, rng)


def to_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=report["columns"], extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in report["rows"]:
        # A spreadsheet would run a cell starting with = + - @ as a formula (names, SKUs, intents).
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return out.getvalue()


def _csv_cell(value):
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


# --- charts ---------------------------------------------------------------------------------------
#
# pygal draws the charts (server-side SVG, a small, maintained library; its text goes through an
# XML serialiser, so names, SKUs and intents are escaped). Its tooltips need a script: it is
# removed, the chart is a plain picture (the inbox shows it with <img>, where scripts never run).

_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL)


def _chart(kind: str, title: str, *, percent: bool = False, **config):
    import pygal
    from pygal.style import DefaultStyle

    cls = {"bar": pygal.Bar, "stacked": pygal.StackedBar, "hbar": pygal.HorizontalBar}[kind]
    chart = cls(js=[], disable_xml_declaration=True, width=900, height=420, style=_style(DefaultStyle),
                legend_at_bottom=True, truncate_label=28, truncate_legend=40, print_zeroes=False,
                no_data_text="No data in this range", **config)
    chart.title = title
    if percent:
        chart.range = (0, 100)
    return chart


# Okabe & Ito's palette: told apart with every common colour-vision deficiency, and bright enough on
# a dark page. The chart's background is transparent and its text a mid grey, so the same picture
# reads in the inbox's light and dark themes (an <img> cannot follow the page's colours).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")


def _style(base):
    return base(colors=PALETTE, background="transparent", plot_background="transparent", foreground="#8a8f98",
                foreground_strong="#8a8f98", foreground_subtle="#8a8f9855", opacity=".95", opacity_hover="1")


def _hours(seconds):
    return None if seconds is None else round(seconds / 3600.0, 2)


def to_svg(report: dict[str, Any]) -> str:
    """The report as a chart (SVG, no script)."""
    name, rows = report["report"], report["rows"]
    title = f"{report['title']} — {report['from']} to {report['to']} ({report['tz']})"
    if name == "volume":
        chart = _chart("stacked", title, x_label_rotation=45, show_minor_x_labels=len({r['day'] for r in rows}) <= 31)
        days = sorted({r["day"] for r in rows})
        chart.x_labels = days
        for channel in report["channels"]:
            per = {r["day"]: r["inbound_messages"] for r in rows if r["channel"] == channel}
            chart.add(channel, [per.get(d, 0) for d in days])
    elif name == "response_times":
        chart = _chart("bar", title, y_title="hours")
        chart.x_labels = [r["channel"] for r in rows]
        for key, label in (("first_response_p50_s", "First response, median"), ("first_response_p90_s", "First response, 90th percentile"),
                           ("resolution_p50_s", "Resolution, median"), ("resolution_p90_s", "Resolution, 90th percentile")):
            chart.add(label, [_hours(r[key]) for r in rows])
    elif name == "sla":
        chart = _chart("bar", title, percent=True, y_title="% met")
        chart.x_labels = [r["channel"] for r in rows]
        chart.add("First response on time, %", [r["first_response_pct"] for r in rows])
        chart.add("Resolved on time, %", [r["resolution_pct"] for r in rows])
    # Horizontal bars are drawn bottom up: reversed, the first row is on top.
    elif name == "csat":
        chart = _chart("hbar", title, percent=True, x_title="% satisfied (4-5)")
        chart.x_labels = [("all answers" if r["dimension"] == "all" else f"{r['dimension']}: {r['label'] or r['key']}")
                          for r in reversed(rows)]
        chart.add("CSAT %", [r["csat_pct"] for r in reversed(rows)])
    elif name == "intents":
        chart = _chart("hbar", title)
        chart.x_labels = [r["intent"] for r in reversed(rows)]
        chart.add("conversations", [r["conversations"] for r in reversed(rows)])
    elif name == "out_of_stock":
        chart = _chart("hbar", title)
        chart.x_labels = [r["product_name"] or r["sku"] for r in reversed(rows)]
        chart.add("asked while unavailable", [r["unavailable"] for r in reversed(rows)])
        chart.add("asked in all", [r["asked"] for r in reversed(rows)])
    elif name == "tags":
        chart = _chart("hbar", title)
        chart.x_labels = [r["tag"] for r in reversed(rows)]
        chart.add("conversations", [r["conversations"] for r in reversed(rows)])
    else:  # pragma: no cover - every report has a chart
        raise NotFound(f"no chart for {name!r}")
    if not rows:
        chart.x_labels = []
    return _SCRIPT.sub("", chart.render(is_unicode=True))
