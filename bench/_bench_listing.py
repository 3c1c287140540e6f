"""The inbox listing under a realistic store: bulk-built dataset, then list_conversations() timings.

Dataset (deterministic): 20 agents; customers = 40% of the conversations, each with one identity
(email 55% / telegram 25% / phone 20%) and 20% of them a second one; conversations spread over a
year of last_message_at, channel email 35% / telegram 25% / voice 10% / webform 15% / api 15%,
status mostly resolved/closed (open and pending mostly in the last two weeks), 12% unassigned,
the rest over 20 agents with a skew, customers skewed (a few have dozens of conversations);
messages spread over the conversations (at least one each), the last one at last_message_at.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from _bench_common import SQLITE_TS, percentile, say
from _bench_workload import FIRST, LAST, SUBJECTS, TEXTS

CHANNELS = ("email", "telegram", "voice", "webform", "api")
CHANNEL_WEIGHTS = (35, 25, 10, 15, 15)
N_AGENTS = 20
RARE_NAME = "Zebulon Quixote"  # exactly one customer has it: the worst case for q=
# One message in RARE_WORD_EVERY says this (with a number of its own): words the message search
# finds in few messages, beside TEXTS' words, which are in a tenth of them or more.
RARE_WORD_TEXT = "The blender makes a grinding noise, serial BX-{n}."
RARE_WORD_EVERY = 2000
DAY = 86_400.0

_CUSTOMER_COLS = ("id", "name", "segment", "merged_into", "created_at", "updated_at")
_IDENTITY_COLS = ("id", "customer_id", "kind", "address", "display_name", "verified", "created_at")
_AGENT_COLS = ("id", "email", "name", "password_hash", "role", "active", "created_at")
_CONVERSATION_COLS = (
    "id", "customer_id", "channel", "thread_key", "subject", "status", "priority", "assignee_id", "intent",
    "sla_due_at", "first_response_at", "resolved_at", "last_message_at", "created_at", "updated_at",
)
_MESSAGE_COLS = (
    "id", "conversation_id", "direction", "channel", "external_id", "identity_id", "author_agent_id", "subject",
    "text", "html", "sent_at", "created_at", "metadata",
)
BOOL_COLS = {"verified", "active"}


@dataclass
class DatasetInfo:
    conversations: int
    messages: int
    customers: int
    identities: int
    heavy_customer: int  # the customer with the most conversations
    heavy_customer_conversations: int
    typical_customer: int
    busy_agent: int
    rare_customer: int
    status_counts: dict
    channel_counts: dict
    build_seconds: float = 0.0
    analyze_seconds: float = 0.0
    search_index_seconds: float = 0.0


class _Gen:
    """Rows as tuples; timestamps as epoch floats until a backend formats them."""

    def __init__(self, n_conv: int, n_msg: int, seed: int = 42):
        self.rng = random.Random(seed)
        self.n_conv = n_conv
        self.n_msg = n_msg
        self.n_cust = max(2, n_conv * 2 // 5)
        self.now = time.time()

    def agents(self):
        base = self.now - 400 * DAY
        return [(i, f"agent{i}@example.com", f"Agent {i}", "x" * 60, "agent", 1, base) for i in range(1, N_AGENTS + 1)]

    def customers_and_identities(self):
        rng, now = self.rng, self.now
        customers, identities, primary = [], [], [0] * (self.n_cust + 1)
        self.rare_customer = self.n_cust // 2 + 1
        ident_id = 0
        for cid in range(1, self.n_cust + 1):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            name = RARE_NAME if cid == self.rare_customer else f"{first} {last}"
            created = now - rng.uniform(0, 730) * DAY
            customers.append((cid, name, "general", None, created, created))
            r = rng.random()
            kinds = ["email" if r < 0.55 else "telegram" if r < 0.80 else "phone"]
            if rng.random() < 0.2:
                kinds.append("telegram" if kinds[0] == "email" else "email")
            for n, kind in enumerate(kinds):
                ident_id += 1
                if kind == "email":
                    local = name.lower().replace(" ", ".")
                    address = f"{local}.{cid}@example.com"
                elif kind == "telegram":
                    address = str(500_000_000 + cid)
                else:
                    address = f"+4479{cid:08d}"
                identities.append((ident_id, cid, kind, address, name, 0, created))
                if n == 0:
                    primary[cid] = ident_id
        self.primary_identity = primary
        return customers, identities

    def conversations(self):
        rng, now = self.rng, self.now
        agent_weights = [1 / (k + 1) ** 0.5 for k in range(N_AGENTS)]
        rows = []
        for conv_id in range(1, self.n_conv + 1):
            customer = min(self.n_cust, int(self.n_cust * rng.random() ** 1.5) + 1)
            channel = rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
            age = rng.uniform(0, 365)
            last = now - age * DAY - rng.random()
            created = last - rng.uniform(0, 10) * DAY
            r = rng.random()
            if age < 14:
                status = "open" if r < 0.35 else "pending" if r < 0.60 else "resolved" if r < 0.90 else "closed"
            else:
                status = "open" if r < 0.02 else "pending" if r < 0.04 else "resolved" if r < 0.34 else "closed"
            assignee = None if rng.random() < 0.12 else rng.choices(range(1, N_AGENTS + 1), agent_weights)[0]
            resolved = last + rng.uniform(60, 3 * DAY) if status in ("resolved", "closed") else None
            first_response = created + rng.uniform(60, DAY) if status != "open" else None
            thread_key = str(500_000_000 + customer) if channel == "telegram" else None
            subject = rng.choice(SUBJECTS).format(n=rng.randrange(10_000, 99_999)) if channel in ("email", "webform") else None
            priority = rng.choices(("low", "normal", "high", "urgent"), (10, 75, 12, 3))[0]
            rows.append(
                (conv_id, customer, channel, thread_key, subject, status, priority, assignee, None,
                 None, first_response, resolved, last, created, max(last, resolved or last))
            )
        self.convs = rows
        return rows

    def message_chunks(self, chunk: int = 50_000):
        """Messages in id order, grouped by conversation, `chunk` rows at a time."""
        rng = self.rng
        n_conv, n_msg = self.n_conv, self.n_msg
        if n_msg >= n_conv:  # one each, the rest at random
            base, extra = 1, Counter(rng.choices(range(n_conv), k=n_msg - n_conv))
        else:
            base, extra = 0, Counter(rng.sample(range(n_conv), n_msg))
        msg_id = 0
        out = []
        for index, conv in enumerate(self.convs):
            k = base + extra.get(index, 0)
            if not k:
                continue
            conv_id, customer, channel, _, subject, _, _, assignee, *_ = conv
            last, created = conv[12], conv[13]
            step = (last - created) / k
            identity = self.primary_identity[customer]
            for j in range(k):
                msg_id += 1
                sent = last if j == k - 1 else created + step * j
                inbound = j == 0 or j == k - 1 or rng.random() < 0.55
                out.append(
                    (msg_id, conv_id, "inbound" if inbound else "outbound", channel, f"L{msg_id}",
                     identity if inbound else None, None if inbound else (assignee or 1), subject,
                     RARE_WORD_TEXT.format(n=msg_id) if msg_id % RARE_WORD_EVERY == 0 else rng.choice(TEXTS),
                     None, sent, sent, "{}")
                )
                if len(out) >= chunk:
                    yield out
                    out = []
        if out:
            yield out
        self.messages_written = msg_id

    def info(self) -> DatasetInfo:
        per_customer = Counter(c[1] for c in self.convs)
        heavy, heavy_n = per_customer.most_common(1)[0]
        # A typical customer: one with two conversations (the median is one or two).
        typical = next((c for c, n in per_customer.items() if n == 2), heavy)
        per_agent = Counter(c[7] for c in self.convs if c[7] is not None)
        return DatasetInfo(
            conversations=len(self.convs),
            messages=getattr(self, "messages_written", 0),
            customers=self.n_cust,
            identities=0,
            heavy_customer=heavy,
            heavy_customer_conversations=heavy_n,
            typical_customer=typical,
            busy_agent=per_agent.most_common(1)[0][0],
            rare_customer=self.rare_customer,
            status_counts=dict(Counter(c[5] for c in self.convs)),
            channel_counts=dict(Counter(c[2] for c in self.convs)),
        )


_utc = UTC


def _ts_indexes(cols) -> list[int]:
    return [i for i, c in enumerate(cols) if c.endswith("_at")]


def _format_rows(rows, cols, fmt):
    ts = _ts_indexes(cols)
    out = []
    for row in rows:
        row = list(row)
        for i in ts:
            if row[i] is not None:
                row[i] = fmt(row[i])
        out.append(row)
    return out


def _sqlite_ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, _utc).strftime(SQLITE_TS)


def build_sqlite(path: str, n_conv: int, n_msg: int) -> DatasetInfo:
    """Fill a migrated, empty SQLite file with executemany in one big transaction, then ANALYZE."""
    import sqlite3

    gen = _Gen(n_conv, n_msg)
    started = time.perf_counter()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-65536")  # 64 MiB
    con.execute("BEGIN")

    def put(table, cols, rows):
        con.executemany(
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            _format_rows(rows, cols, _sqlite_ts),
        )

    put("agent", _AGENT_COLS, gen.agents())
    customers, identities = gen.customers_and_identities()
    put("customer", _CUSTOMER_COLS, customers)
    put("identity", _IDENTITY_COLS, identities)
    put("conversation", _CONVERSATION_COLS, gen.conversations())
    for chunk in gen.message_chunks():
        put("message", _MESSAGE_COLS, chunk)
    con.execute("COMMIT")
    build = time.perf_counter() - started
    started = time.perf_counter()
    con.execute("ANALYZE")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    analyze = time.perf_counter() - started
    con.close()
    info = gen.info()
    info.identities = len(identities)
    info.build_seconds, info.analyze_seconds = build, analyze
    return info


def _copy_text(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
            value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        return value
    return str(value)


def _pg_ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, _utc).strftime(SQLITE_TS) + "+00"


def build_postgres(conninfo: str, n_conv: int, n_msg: int) -> DatasetInfo:
    """Fill a migrated, empty PostgreSQL database with COPY, then VACUUM ANALYZE."""
    import psycopg

    gen = _Gen(n_conv, n_msg)
    started = time.perf_counter()
    with psycopg.connect(conninfo) as con:
        cur = con.cursor()

        def put(table, cols, rows):
            bools = [i for i, c in enumerate(cols) if c in BOOL_COLS]
            with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
                lines = []
                for row in _format_rows(rows, cols, _pg_ts):
                    for i in bools:
                        row[i] = "t" if row[i] else "f"
                    lines.append("\t".join(map(_copy_text, row)))
                    if len(lines) >= 10_000:
                        cp.write("\n".join(lines) + "\n")
                        lines = []
                if lines:
                    cp.write("\n".join(lines) + "\n")

        put("agent", _AGENT_COLS, gen.agents())
        customers, identities = gen.customers_and_identities()
        put("customer", _CUSTOMER_COLS, customers)
        put("identity", _IDENTITY_COLS, identities)
        put("conversation", _CONVERSATION_COLS, gen.conversations())
        for chunk in gen.message_chunks():
            put("message", _MESSAGE_COLS, chunk)
        for table in ("agent", "customer", "identity", "conversation", "message"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        con.commit()
        build = time.perf_counter() - started
        started = time.perf_counter()
        con.autocommit = True
        # VACUUM too, as autovacuum would have by now: it also empties the GIN indexes' pending
        # lists, which a bulk COPY fills and every search would read through.
        con.execute("VACUUM ANALYZE")
        analyze = time.perf_counter() - started
    info = gen.info()
    info.identities = len(identities)
    info.build_seconds, info.analyze_seconds = build, analyze
    return info


def listing_filters(info: DatasetInfo, engine) -> list[tuple[str, object]]:
    """(label, ConversationFilter); cursors come from real earlier pages."""
    from hub.conversations.listing import ConversationFilter, list_conversations

    first = list_conversations(engine, ConversationFilter(status="pending", limit=50))
    cursor_p2 = first["next_cursor"]
    page, cursor_deep = first, None
    for _ in range(19):  # page 20
        if not page["next_cursor"]:
            break
        cursor_deep = page["next_cursor"]
        page = list_conversations(engine, ConversationFilter(status="pending", limit=50, cursor=cursor_deep))
    common_q = "kowal"  # Kowalski: ~1 customer in 40 (names and email addresses)
    rare_q = RARE_NAME.split()[1].lower()[:6]  # "quixot": one customer
    filters = [
        ("no filter", ConversationFilter()),
        ("status=open", ConversationFilter(status="open")),
        ("status=pending cursor p2", ConversationFilter(status="pending", cursor=cursor_p2)),
        ("status=pending cursor p20", ConversationFilter(status="pending", cursor=cursor_deep or cursor_p2)),
        ("status=closed", ConversationFilter(status="closed")),
        ("channel=telegram", ConversationFilter(channel="telegram")),
        (f"assignee={info.busy_agent}", ConversationFilter(assignee=info.busy_agent)),
        ("assignee=0 (unassigned)", ConversationFilter(assignee=0)),
        (f"assignee={info.busy_agent}&status=open", ConversationFilter(assignee=info.busy_agent, status="open")),
        ("channel=voice&status=pending", ConversationFilter(channel="voice", status="pending")),
        (f"customer={info.heavy_customer} (heavy)", ConversationFilter(customer=info.heavy_customer)),
        (f"customer={info.typical_customer}", ConversationFilter(customer=info.typical_customer)),
        (f"q={common_q} (common)", ConversationFilter(q=common_q)),
        (f"q={rare_q} (1 customer)", ConversationFilter(q=rare_q)),
        # Subjects are "<text> <5-digit number>": a number prefix is a handful of conversations.
        ("q=order 4821 (subject, rare)", ConversationFilter(q="order 4821")),
        ("q=delivery (subject, 1 in 20)", ConversationFilter(q="delivery")),
        ("q=example.com (every email)", ConversationFilter(q="example.com")),
        ("q=ko (2 chars, common)", ConversationFilter(q="ko")),
        ("q=zq (2 chars, no match)", ConversationFilter(q="zq")),
        ("q=grinding noise (text, 1 in 2000)", ConversationFilter(q="grinding noise")),
        ("q=refund payments (text, 1 in 10)", ConversationFilter(q="refund payments")),
        ("q=the (text, most messages)", ConversationFilter(q="the")),
        # Two words each in a tenth of the messages, never in the same one: no match at all.
        ("q=parcel refund (common words, never together)", ConversationFilter(q="parcel refund")),
        (f"status=open&q={common_q}", ConversationFilter(status="open", q=common_q)),
    ]
    if cursor_p2 is None:
        filters = [f for f in filters if "cursor" not in f[0]]
    return filters


def _capture_and_explain(engine, f) -> tuple[list[str], str]:
    """Run the listing once with the SQL captured, then EXPLAIN that exact statement."""
    from sqlalchemy import event

    from hub.conversations.listing import list_conversations

    captured = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        list_conversations(engine, f)
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    if not captured:
        return [], ""
    statement, params = captured[-1]
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
            plan = [r[3] for r in rows]
        else:
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, params).all()
            plan = [r[0] for r in rows]
    return plan, statement


class _without_search_index:
    """list_conversations as without migration 0003's indexes: the plain LIKE query."""

    def __enter__(self):
        from hub.conversations.search import substrings

        self.saved = substrings.SEARCH_MIN_CHARS
        substrings.SEARCH_MIN_CHARS = 10**9

    def __exit__(self, *exc):
        from hub.conversations.search import substrings

        substrings.SEARCH_MIN_CHARS = self.saved


def check_search(engine, info: DatasetInfo) -> list[str]:
    """Every q= filter answers the same first two pages through the indexes as without them."""
    from hub.conversations.listing import ConversationFilter, list_conversations

    problems = []
    for label, f in listing_filters(info, engine):
        if not f.q:
            continue
        pages = []
        for plain in (False, True):
            with _without_search_index() if plain else _noop():
                p1 = list_conversations(engine, f)
                p2 = list_conversations(engine, ConversationFilter(**{**f.__dict__, "cursor": p1["next_cursor"]})) if p1["next_cursor"] else None
            pages.append(([c["id"] for c in p1["items"]], [c["id"] for c in p2["items"]] if p2 else None))
        if pages[0] != pages[1]:
            problems.append(f"{label}: the indexed search answers {pages[0]}, the plain query {pages[1]}")
    return problems


class _noop:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def time_listing(engine, info: DatasetInfo, reps: int, budget_s: float) -> list[dict]:
    results = []
    filters = listing_filters(info, engine)
    # The searches the index is for, once more without it: the difference it makes, same run.
    filters += [(label + " [no index]", f) for label, f in filters if "rare" in label or "1 customer" in label]
    for label, f in filters:
        with _without_search_index() if label.endswith("[no index]") else _noop():
            row = _time_one(engine, label, f, reps, budget_s)
        results.append(row)
    return results


def _time_one(engine, label, f, reps: int, budget_s: float) -> dict:
    from hub.conversations.listing import list_conversations

    for _ in range(3):  # warm caches and the compiled-statement cache
        page = list_conversations(engine, f)
    times = []
    started = time.perf_counter()
    for _ in range(reps):
        t0 = time.perf_counter()
        list_conversations(engine, f)
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - started > budget_s:
            break
    plan, _ = _capture_and_explain(engine, f)
    row = {
        "filter": label,
        "reps": len(times),
        "items": len(page["items"]),
        "has_next": page["next_cursor"] is not None,
        "p50_ms": percentile(times, 50) * 1000,
        "p95_ms": percentile(times, 95) * 1000,
        "max_ms": max(times) * 1000,
        "plan": plan,
    }
    say(f"    {label:<34} p50 {row['p50_ms']:8.2f} ms  p95 {row['p95_ms']:8.2f} ms  ({row['reps']} reps, {row['items']} items)")
    return row


def check_pagination(engine) -> list[str]:
    """Keyset pagination sanity: page 2 follows page 1 with no overlap and keeps the order."""
    from hub.conversations.listing import ConversationFilter, list_conversations

    problems = []
    for f in (ConversationFilter(status="pending"), ConversationFilter()):
        p1 = list_conversations(engine, f)
        if not p1["next_cursor"]:
            continue
        p2 = list_conversations(engine, ConversationFilter(**{**f.__dict__, "cursor": p1["next_cursor"]}))
        ids1 = [c["id"] for c in p1["items"]]
        ids2 = [c["id"] for c in p2["items"]]
        if set(ids1) & set(ids2):
            problems.append(f"{f}: pages 1 and 2 overlap")
        keys = [(datetime.fromisoformat(c["last_message_at"].replace("Z", "+00:00")), c["id"]) for c in p1["items"] + p2["items"]]
        if keys != sorted(keys, reverse=True):
            problems.append(f"{f}: pages 1+2 are not in (last_message_at, id) descending order")
    return problems
