"""The demo SCM database: orders, shipments, products and stock the demo conversations ask about.

It is the embedded default of the sql back end (data_dir/scm-demo.db when no URL is set) and the
schema the sql back end's default column mapping describes. Every date is relative to the day of
seeding, and the data is re-anchored when that day has passed, so "promised on Monday, expected in
two days" stays true whenever the demo runs. Seeding is idempotent: the same rows every time, in
one transaction; escalated cases and demand already recorded are kept.

What hub/demo/seed.py's conversations need: Ana Silva's order A1001 (shipped, late), Ben Okafor's
question about KET-BLUE (out of stock, a receipt due), Chloé Martin's SO-4711 (shipped with DHL);
and order histories that make Ana a key customer by value and Chloé a potential one by frequency.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    insert,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from adapters.base import product_label
from hub.contract import clock

SCHEMA_VERSION = "2"  # 2: order history that makes Ana key and Chloé potential

metadata = MetaData()

orders = Table(
    "orders", metadata,
    Column("ref", String(32), primary_key=True),
    Column("customer_name", String(200)),
    Column("email", String(320)),
    Column("phone", String(32)),
    Column("status", String(32), nullable=False),
    Column("ordered_at", DateTime(timezone=True)),
    Column("promised_date", Date),
    Column("expected_date", Date),
    Column("total", Float),
    Column("currency", String(3)),
)

order_lines = Table(
    "order_lines", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_ref", String(32), nullable=False, index=True),
    Column("line_no", Integer, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("name", String(200)),
    Column("quantity", Float, nullable=False),
    Column("shipped_quantity", Float),
)

shipments = Table(
    "shipments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_ref", String(32), nullable=False, index=True),
    Column("carrier", String(64)),
    Column("tracking_number", String(64)),
    Column("tracking_url", String(500)),
    Column("shipped_at", DateTime(timezone=True)),
    Column("expected_date", Date),
    Column("delivered_at", DateTime(timezone=True)),
)

products = Table(
    "products", metadata,
    Column("sku", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("variant", String(100)),
    Column("aliases", Text),
    Column("active", Boolean, nullable=False, default=True),
)

stock = Table(
    "stock", metadata,
    Column("sku", String(64), primary_key=True),
    Column("warehouse", String(100), primary_key=True),
    Column("on_hand", Float, nullable=False),
    Column("reserved", Float, nullable=False, default=0),
)

receipts = Table(
    "receipts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sku", String(64), nullable=False, index=True),
    Column("warehouse", String(100), nullable=False),
    Column("expected_date", Date, nullable=False),
    Column("quantity", Float, nullable=False),
    Column("received", Boolean, nullable=False, default=False),
)

cases = Table(
    "cases", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", String(100), nullable=False, unique=True),
    Column("conversation_id", Integer),
    Column("reason", String(200)),
    Column("summary", Text),
    Column("priority", String(20)),
    Column("customer_email", String(320)),
    Column("order_refs", Text),
    Column("facts", Text),
    Column("created_at", DateTime(timezone=True)),
)

demand = Table(
    "demand", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("day", Date, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("asked", Integer, nullable=False),
    Column("unavailable", Integer, nullable=False),
    Column("product_name", String(200)),
    UniqueConstraint("day", "sku"),
)

demo_meta = Table(
    "demo_meta", metadata,
    Column("key", String(50), primary_key=True),
    Column("value", String(200)),
)

# The rows the demo rewrites when it re-anchors dates (cases and demand are the hub's, kept).
DEMO_TABLES = (orders, order_lines, shipments, products, stock, receipts)

WAREHOUSES = ("Leeds DC", "Rotterdam DC")

TRACKING_URLS = {
    "DHL": "https://www.dhl.com/global-en/home/tracking/tracking-parcel.html?submit=1&tracking-id={n}",
    "UPS": "https://www.ups.com/track?loc=en_GB&tracknum={n}",
    "DPD": "https://track.dpd.co.uk/parcels/{n}",
    "Royal Mail": "https://www.royalmail.com/track-your-item#/tracking-results/{n}",
    "GLS": "https://gls-group.com/GB/en/parcel-tracking?match={n}",
}

# sku, name, variant, aliases, price
CATALOGUE = [
    ("X200-BLU", "X200 headphones", "blue", "X200 wireless headphones, X200 blue", 129.0),
    ("X200-BLK", "X200 headphones", "black", "X200 wireless headphones, X200 black", 129.0),
    ("X200-WHT", "X200 headphones", "white", "X200 wireless headphones, X200 white", 129.0),
    ("KET-BLUE", "Blue kettle", "blue", "electric kettle blue, 1.7 l kettle", 49.0),
    ("KET-STEEL", "Steel kettle", "steel", "electric kettle stainless steel", 45.0),
    ("TST-2S-RED", "Two-slice toaster", "red", "toaster red", 39.0),
    ("TST-2S-CRM", "Two-slice toaster", "cream", "toaster cream", 39.0),
    ("LMP-AERO", "Aero desk lamp", None, "LED desk lamp, Aero lamp", 59.0),
    ("BAG-TRAIL-30-GRN", "Trail backpack 30 L", "green", "hiking backpack, trail pack", 89.0),
    ("BAG-TRAIL-30-GRY", "Trail backpack 30 L", "grey", "hiking backpack, trail pack", 89.0),
    ("PLG-S1", "Smart plug S1", None, "wifi plug, smart socket", 19.0),
    ("GRD-100", "Burr coffee grinder", None, "coffee mill, grinder 100", 99.0),
    ("CHG-65W", "USB-C charger 65 W", None, "65W charger, laptop charger", 35.0),
    ("MAT-YOGA-PRP", "Yoga mat", "purple", "exercise mat purple", 29.0),
    ("MAT-YOGA-BLU", "Yoga mat", "blue", "exercise mat blue", 29.0),
    ("MUG-CER-2", "Ceramic mug, set of 2", None, "coffee mugs", 18.0),
]
PRICES = {sku: price for sku, *_, price in CATALOGUE}
NAMES = {sku: product_label(name, variant) for sku, name, variant, _a, _p in CATALOGUE}

# sku -> {warehouse: (on_hand, reserved)}; receipts: sku, warehouse, days from today, quantity
STOCK = {
    "X200-BLU": {"Leeds DC": (14, 2), "Rotterdam DC": (3, 0)},
    "X200-BLK": {"Leeds DC": (0, 0), "Rotterdam DC": (0, 0)},
    "X200-WHT": {"Leeds DC": (6, 1), "Rotterdam DC": (9, 0)},
    "KET-BLUE": {"Leeds DC": (2, 2), "Rotterdam DC": (0, 0)},
    "KET-STEEL": {"Leeds DC": (25, 3), "Rotterdam DC": (11, 0)},
    "TST-2S-RED": {"Leeds DC": (8, 0), "Rotterdam DC": (4, 1)},
    "TST-2S-CRM": {"Leeds DC": (0, 0), "Rotterdam DC": (5, 0)},
    "LMP-AERO": {"Leeds DC": (31, 4), "Rotterdam DC": (12, 0)},
    "BAG-TRAIL-30-GRN": {"Leeds DC": (7, 0), "Rotterdam DC": (2, 0)},
    "BAG-TRAIL-30-GRY": {"Leeds DC": (1, 1), "Rotterdam DC": (0, 0)},
    "PLG-S1": {"Leeds DC": (120, 10), "Rotterdam DC": (80, 0)},
    "GRD-100": {"Leeds DC": (5, 0), "Rotterdam DC": (0, 0)},
    "CHG-65W": {"Leeds DC": (44, 0), "Rotterdam DC": (30, 2)},
    "MAT-YOGA-PRP": {"Leeds DC": (17, 0), "Rotterdam DC": (6, 0)},
    "MAT-YOGA-BLU": {"Leeds DC": (0, 0), "Rotterdam DC": (3, 0)},
    "MUG-CER-2": {"Leeds DC": (60, 0), "Rotterdam DC": (25, 0)},
}
RECEIPTS = [
    ("KET-BLUE", "Leeds DC", 6, 40),
    ("KET-BLUE", "Rotterdam DC", 12, 24),
    ("X200-BLK", "Leeds DC", 4, 30),
    ("X200-BLK", "Rotterdam DC", 9, 20),
    ("BAG-TRAIL-30-GRY", "Leeds DC", 10, 15),
    ("MAT-YOGA-BLU", "Leeds DC", 3, 25),
    ("TST-2S-CRM", "Leeds DC", 8, 12),
    ("GRD-100", "Rotterdam DC", 14, 10),
    ("PLG-S1", "Leeds DC", -5, 100),   # already received: not incoming any more
]

# The customers the demo conversations name come first; the rest fill the order book.
CUSTOMERS = [
    ("Ana Silva", "ana.silva@example.com", "+351 912 345 678"),
    ("Ben Okafor", "ben.okafor@example.com", "+234 803 555 0147"),
    ("Chloé Martin", "chloe.martin@example.com", "+44 20 7946 0958"),
    ("Dmitri Volkov", "dmitri@example.org", "+49 30 901820"),
    ("Emma Johansson", "emma.johansson@example.com", "+46 8 123 456 78"),
    ("Farid Haddad", "farid.haddad@example.net", "+33 1 70 18 99 00"),
    ("Grace Lee", "grace.lee@example.com", "+1 202 555 0143"),
    ("Hiroshi Tanaka", "hiroshi.tanaka@example.jp", "+81 3 1234 5678"),
    ("Isabel Romero", "isabel.romero@example.es", "+34 912 345 678"),
    ("Jonas Weber", "jonas.weber@example.de", "+49 89 1234567"),
]


def _last_monday_before(today: date) -> date:
    """The Monday Ana's order was due: the most recent Monday at least two days ago."""
    day = today - timedelta(days=2)
    return day - timedelta(days=day.weekday())


def demo_rows(today: date) -> dict[str, list[dict]]:
    """Every demo row, dates anchored on `today`. Deterministic: the same today, the same rows."""
    def at(days: int, hour: int = 10) -> datetime:
        return datetime.combine(today + timedelta(days=days), time(hour, 0), tzinfo=UTC)

    rows: dict[str, list[dict]] = {t.name: [] for t in DEMO_TABLES}
    for sku, name, variant, aliases, _price in CATALOGUE:
        rows["products"].append({"sku": sku, "name": name, "variant": variant, "aliases": aliases, "active": True})
    rows["products"].append({"sku": "KET-RETRO", "name": "Retro kettle", "variant": "cream",
                             "aliases": "discontinued kettle", "active": False})
    for sku, places in STOCK.items():
        for warehouse, (on_hand, reserved) in places.items():
            rows["stock"].append({"sku": sku, "warehouse": warehouse, "on_hand": on_hand, "reserved": reserved})
    for sku, warehouse, days, quantity in RECEIPTS:
        rows["receipts"].append({"sku": sku, "warehouse": warehouse, "expected_date": today + timedelta(days=days),
                                 "quantity": quantity, "received": days < 0})

    def add_order(ref, customer, state, ordered_days, lines, *, promised=None, expected=None, shipments=()):
        name, email, phone = customer
        total = sum(PRICES[sku] * qty for sku, qty, _shipped in lines)
        rows["orders"].append({
            "ref": ref, "customer_name": name, "email": email, "phone": phone, "status": state,
            "ordered_at": at(ordered_days, 9), "promised_date": today + timedelta(days=promised) if promised is not None else None,
            "expected_date": today + timedelta(days=expected) if expected is not None else None,
            "total": round(total, 2), "currency": "GBP",
        })
        for no, (sku, qty, shipped) in enumerate(lines, start=1):
            rows["order_lines"].append({"order_ref": ref, "line_no": no, "sku": sku, "name": NAMES[sku],
                                        "quantity": qty, "shipped_quantity": shipped})
        for carrier, number, shipped_days, expected_days, delivered_days in shipments:
            rows["shipments"].append({
                "order_ref": ref, "carrier": carrier, "tracking_number": number,
                "tracking_url": TRACKING_URLS[carrier].format(n=number), "shipped_at": at(shipped_days, 16),
                "expected_date": today + timedelta(days=expected_days) if expected_days is not None else None,
                "delivered_at": at(delivered_days, 13) if delivered_days is not None else None,
            })

    ana, ben, chloe, dmitri = CUSTOMERS[:4]
    monday = (_last_monday_before(today) - today).days
    # Ana: shipped but late. Promised on Monday, the carrier now expects it in two days.
    add_order("A1001", ana, "shipped", monday - 6, [("X200-BLU", 1, 1), ("CHG-65W", 1, 1)],
              promised=monday, expected=2, shipments=[("UPS", "1Z999AA10123456784", monday - 2, 2, None)])
    add_order("A0987", ana, "delivered", -60, [("MUG-CER-2", 2, 2)], promised=-55,
              shipments=[("Royal Mail", "JD014600006281234567", -58, -56, -56)])
    # Chloé: her last order, shipped with DHL (she called about a double charge).
    add_order("SO-4711", chloe, "shipped", -4, [("KET-STEEL", 1, 1), ("TST-2S-RED", 1, 1)], promised=1, expected=1,
              shipments=[("DHL", "00340434161094042557", -1, 1, None)])
    add_order("SO-4690", chloe, "delivered", -30, [("LMP-AERO", 1, 1)], promised=-26,
              shipments=[("DHL", "00340434161094015902", -29, -27, -27)])
    # Their order history over the year gives the demo customers different segments
    # (hub/segments/value.py, default thresholds): Ana is key by value (over 2000 GBP), Chloé potential
    # by frequency (three orders), Ben and Dmitri general (one order each).
    add_order("A0950", ana, "delivered", -120, [("X200-BLK", 6, 6), ("GRD-100", 4, 4)], promised=-114,
              shipments=[("DPD", "15501234567890", -118, -116, -116)])
    add_order("A0962", ana, "delivered", -90, [("LMP-AERO", 10, 10), ("PLG-S1", 12, 12)], promised=-85,
              shipments=[("UPS", "1Z999AA10123450962", -88, -86, -86)])
    add_order("A0975", ana, "delivered", -75, [("BAG-TRAIL-30-GRN", 2, 2)], promised=-70,
              shipments=[("GLS", "GL1234509750", -74, -72, -72)])
    add_order("SO-4650", chloe, "delivered", -70, [("MAT-YOGA-PRP", 2, 2), ("MUG-CER-2", 1, 1)], promised=-65,
              shipments=[("Royal Mail", "JD014600006281204650", -69, -67, -67)])
    # Ben: an order of his own, which his unverified Telegram account may not see.
    add_order("SO-4720", ben, "processing", -1, [("X200-WHT", 1, 0)], promised=4, expected=4)
    # Dmitri: "ships in 2 days" vs "2 weeks": the grinder is backordered at Leeds.
    add_order("SO-4716", dmitri, "on_hold", -2, [("GRD-100", 1, 0), ("MUG-CER-2", 1, 0)], promised=3, expected=14)

    # The rest of the order book, from a fixed seed: the same rows on every run.
    rnd = random.Random(4711)
    skus = [sku for sku, *_ in CATALOGUE]
    carriers = list(TRACKING_URLS)
    refs = [f"A{n}" for n in range(1002, 1014)] + [f"SO-{n}" for n in range(4700, 4716) if n != 4711]
    plan = ["pending", "confirmed", "processing", "shipped", "shipped", "delivered", "delivered",
            "delivered", "cancelled", "returned", "on_hold"]
    for i, ref in enumerate(refs):
        customer = CUSTOMERS[4 + i % (len(CUSTOMERS) - 4)]
        state = plan[i % len(plan)]
        ordered = -rnd.randint(2, 6) if state == "shipped" else -rnd.randint(1, 40)
        chosen = rnd.sample(skus, rnd.randint(1, 3))
        lines = []
        for sku in chosen:
            qty = rnd.randint(1, 3)
            lines.append((sku, qty, qty if state in ("shipped", "delivered", "returned") else 0))
        promised = ordered + rnd.randint(3, 7)
        shipped_list = []
        expected = None
        if state in ("shipped", "delivered", "returned"):
            carrier = carriers[i % len(carriers)]
            number = f"{carrier[:2].upper().replace(' ', '')}{rnd.randint(10**9, 10**10 - 1)}"
            ship_day = min(ordered + rnd.randint(1, 3), -1)
            delivered = None if state == "shipped" else min(ship_day + 2, 0)
            expected = max(ship_day + 3, 1) if state == "shipped" else ship_day + 2
            shipped_list.append((carrier, number, ship_day, expected, delivered))
        elif state in ("pending", "confirmed", "processing", "on_hold"):
            promised = max(promised, 2)
            expected = promised
        add_order(ref, customer, state, ordered, lines, promised=promised, expected=expected, shipments=shipped_list)
    return rows


def create_schema(url: str) -> None:
    engine = create_engine(url)
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()


def seed_demo_database(url: str, today: date | None = None) -> None:
    """Create the demo schema at `url` and (re)write its rows anchored on today; a no-op when
    they were written today already. Cases and demand rows are never touched."""
    today = today or clock.today()
    stamp = f"{SCHEMA_VERSION}:{today.isoformat()}"
    engine = create_engine(url)
    try:
        metadata.create_all(engine)
        try:
            _rewrite(engine, today, stamp)
        except DBAPIError:
            # Another process seeding at the same moment: fine if it finished the same work.
            if _stamp(engine) != stamp:
                raise
    finally:
        engine.dispose()


def _stamp(engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(demo_meta.c.value).where(demo_meta.c.key == "seeded")).scalar()


def _rewrite(engine, today: date, stamp: str) -> None:
    with engine.begin() as conn:
        if conn.execute(select(demo_meta.c.value).where(demo_meta.c.key == "seeded")).scalar() == stamp:
            return
        rows = demo_rows(today)
        for table in reversed(DEMO_TABLES):
            conn.execute(delete(table))
        for table in DEMO_TABLES:
            if rows[table.name]:
                conn.execute(insert(table), rows[table.name])
        conn.execute(delete(demo_meta).where(demo_meta.c.key == "seeded"))
        conn.execute(insert(demo_meta).values(key="seeded", value=stamp))


def demo_url(data_dir: Path) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / 'scm-demo.db'}"


def seed_demo_scm(data_dir: Path) -> str:
    """Seed data_dir/scm-demo.db (idempotent) and return its SQLAlchemy URL."""
    url = demo_url(data_dir)
    database = make_url(url).database
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    seed_demo_database(url)
    return url
