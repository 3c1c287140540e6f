"""Settings of the SCM/ERP back ends (SERVICEHUB_SCM__BACKEND__...): which one, and how to reach it.

The hub embeds BackendSettings as `Settings.scm.backend`, so every field below is reachable as
an environment variable (SERVICEHUB_SCM__BACKEND__KIND=erpnext,
SERVICEHUB_SCM__BACKEND__ERPNEXT__URL=https://erp.example.com) or in the TOML file
([scm.backend] kind = "erpnext", [scm.backend.erpnext] url = "..."). Each back end has its own
sub-model with defaults; only the one named by `kind` is used. Secrets are SecretStr so they never
appear in logs or in a settings dump.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class BackendMisconfigured(ValueError):
    """The settings name a back end but lack what it needs (a URL, a database, a mapped column)."""

# --- sql: any SQLAlchemy database, tables and columns mapped ---------------------------------
# A column set to None is "not in this schema"; the answer simply lacks that fact.

class OrdersTable(BaseModel):
    table: str = "orders"
    key: str = "ref"                   # what order lines and shipments refer to (often an id)
    ref: str = "ref"                   # the number customers quote
    state: str = "status"
    ordered_at: str | None = "ordered_at"
    promised_date: str | None = "promised_date"
    expected_date: str | None = "expected_date"
    email: str | None = "email"
    phone: str | None = "phone"
    total: str | None = "total"
    currency: str | None = "currency"


class OrderLinesTable(BaseModel):
    table: str = "order_lines"
    order_key: str = "order_ref"
    sku: str = "sku"
    name: str | None = "name"
    quantity: str = "quantity"
    shipped_quantity: str | None = "shipped_quantity"
    state: str | None = None
    position: str | None = "line_no"   # sort order


class ShipmentsTable(BaseModel):
    table: str | None = "shipments"    # None: the schema has no shipments
    order_key: str = "order_ref"
    carrier: str | None = "carrier"
    tracking_number: str | None = "tracking_number"
    tracking_url: str | None = "tracking_url"
    shipped_at: str | None = "shipped_at"
    expected_date: str | None = "expected_date"
    delivered_at: str | None = "delivered_at"


class ProductsTable(BaseModel):
    table: str = "products"
    sku: str = "sku"
    name: str = "name"
    variant: str | None = "variant"
    aliases: str | None = "aliases"   # comma-separated other names
    active: str | None = "active"     # rows with a false value are left out


class StockTable(BaseModel):
    table: str = "stock"
    sku: str = "sku"
    location: str = "warehouse"
    on_hand: str = "on_hand"
    reserved: str | None = "reserved"      # available = on_hand - reserved ...
    available: str | None = None           # ... unless the schema keeps it


class ReceiptsTable(BaseModel):
    table: str | None = "receipts"     # incoming goods; None: the schema has none
    sku: str = "sku"
    location: str = "warehouse"
    expected_date: str = "expected_date"
    quantity: str = "quantity"
    received: str | None = "received"  # rows with a true value are done, not incoming


class CasesTable(BaseModel):
    table: str | None = "cases"        # escalations; None: escalate by the hub's webhook
    id: str = "id"                     # the back office's own number (autoincrement)
    case_id: str = "case_id"           # the hub's id, unique: escalate() is idempotent on it
    conversation_id: str = "conversation_id"
    reason: str = "reason"
    summary: str = "summary"
    priority: str = "priority"
    customer_email: str = "customer_email"
    order_refs: str = "order_refs"
    facts: str = "facts"               # JSON text
    created_at: str = "created_at"


class DemandTable(BaseModel):
    table: str | None = "demand"       # None: demand signals are not kept
    day: str = "day"
    sku: str = "sku"
    asked: str = "asked"
    unavailable: str = "unavailable"
    product_name: str = "product_name"


class SqlSettings(BaseModel):
    """Empty url: the demo SCM database in the data dir (adapters/demo_scm.py), seeded on start."""

    url: SecretStr = SecretStr("")
    db_schema: str | None = None       # PostgreSQL schema of the tables
    order_prefixes: list[str] = Field(default_factory=lambda: ["SO-"])  # "4711" also tries "SO-4711"
    states: dict[str, str] = Field(default_factory=dict)  # your status values -> ours
    orders: OrdersTable = Field(default_factory=OrdersTable)
    order_lines: OrderLinesTable = Field(default_factory=OrderLinesTable)
    shipments: ShipmentsTable = Field(default_factory=ShipmentsTable)
    products: ProductsTable = Field(default_factory=ProductsTable)
    stock: StockTable = Field(default_factory=StockTable)
    receipts: ReceiptsTable = Field(default_factory=ReceiptsTable)
    cases: CasesTable = Field(default_factory=CasesTable)
    demand: DemandTable = Field(default_factory=DemandTable)
    max_products: int = 20             # free text matching more SKUs than this is cut


# --- http: a generic JSON REST back end ------------------------------------------------------
# Templates take {ref}, {sku}, {query} (URL-quoted). Field maps go from our field to a dotted path
# into the JSON answer ("data.status", "lines.0.sku"); a field left out is not in the answer.

class HttpSettings(BaseModel):
    base_url: str = ""
    auth_header: str = "Authorization"
    auth_value: SecretStr | None = None           # e.g. "Bearer abc..."
    headers: dict[str, str] = Field(default_factory=dict)
    order_prefixes: list[str] = Field(default_factory=list)
    states: dict[str, str] = Field(default_factory=dict)

    order_url: str = "/orders/{ref}"
    order_root: str = ""                          # dotted path of the order object in the answer
    order_fields: dict[str, str] = Field(default_factory=lambda: {
        "ref": "ref", "state": "status", "ordered_at": "ordered_at", "promised_date": "promised_date",
        "expected_date": "expected_date", "owner_email": "customer.email", "owner_phone": "customer.phone",
        "carrier": "shipment.carrier", "tracking_number": "shipment.tracking_number",
        "tracking_url": "shipment.tracking_url", "shipped_at": "shipment.shipped_at",
        "total": "total", "currency": "currency",
    })
    lines_path: str = "lines"
    line_fields: dict[str, str] = Field(default_factory=lambda: {
        "sku": "sku", "name": "name", "quantity": "quantity", "shipped_quantity": "shipped_quantity",
    })

    stock_url: str = "/stock/{sku}"
    stock_search_url: str = "/stock?q={query}"   # free text; empty: only SKUs are looked up
    stock_path: str = "levels"                    # the list of levels in the answer
    stock_fields: dict[str, str] = Field(default_factory=lambda: {
        "sku": "sku", "location": "location", "available": "available", "on_hand": "on_hand",
        "product_name": "name",
    })
    incoming_path: str = "incoming"               # inside a level: list of receipts
    incoming_fields: dict[str, str] = Field(default_factory=lambda: {"date": "date", "quantity": "quantity"})

    products_url: str = "/products"
    products_path: str = "items"
    product_fields: dict[str, str] = Field(default_factory=lambda: {
        "sku": "sku", "name": "name", "variant": "variant", "aliases": "aliases",
    })
    next_page_path: str | None = "next"           # absolute or relative URL of the next page

    # A customer's orders (customer value, hub/segments/value.py): {email}, {phone} (E.164) and {since}
    # (ISO date, "" for all); one request per verified email (and phone, when the template asks for
    # one). None: the API has no such listing and customers are valued from contact history only.
    customer_orders_url: str | None = "/customers/orders?email={email}&since={since}"
    customer_orders_path: str = "orders"          # the list of orders in the answer
    customer_order_fields: dict[str, str] = Field(default_factory=lambda: {
        "ref": "ref", "placed_on": "ordered_at", "total": "total", "currency": "currency", "state": "status",
    })

    escalate_url: str | None = None               # POST, Idempotency-Key: case id; None: webhook
    escalation_reference_path: str = "id"
    escalation_url_path: str | None = "url"
    demand_url: str | None = None                 # POST; None: demand is not sent


# --- ERPNext / Frappe --------------------------------------------------------------------------

class ErpnextSettings(BaseModel):
    url: str = ""
    api_key: SecretStr = SecretStr("")
    api_secret: SecretStr = SecretStr("")
    order_prefixes: list[str] = Field(default_factory=list)  # "4711" also finds SAL-ORD-2026-04711 (one match)
    warehouses: list[str] = Field(default_factory=list)   # empty: every warehouse with a Bin
    # "issue": escalate() creates an Issue; "webhook": the hub sends its signed webhook instead.
    escalation: Literal["issue", "webhook"] = "issue"
    issue_priority: dict[str, str] = Field(default_factory=lambda: {"low": "Low", "normal": "Medium",
                                                                    "high": "High", "urgent": "High"})
    states: dict[str, str] = Field(default_factory=dict)


# --- Odoo ------------------------------------------------------------------------------------

class OdooSettings(BaseModel):
    url: str = ""
    database: str = ""
    username: str = ""
    password: SecretStr = SecretStr("")                   # the user's password or an API key
    order_prefixes: list[str] = Field(default_factory=lambda: ["S"])
    order_digits: int = 5                                 # the sequence's padding: "42" -> S00042
    warehouses: list[str] = Field(default_factory=list)   # warehouse codes; empty: all
    # "helpdesk": escalate() creates a helpdesk.ticket (Odoo Enterprise Helpdesk app);
    # "webhook": the hub sends its signed webhook instead.
    escalation: Literal["helpdesk", "webhook"] = "webhook"
    helpdesk_team_id: int | None = None
    states: dict[str, str] = Field(default_factory=dict)


class BackendSettings(BaseModel):
    kind: Literal["sql", "http", "erpnext", "odoo"] = "sql"
    # Every call is cut after this; a back end that keeps failing trips the breaker, which
    # answers BackendUnavailable at once until a probe after breaker_reset_seconds succeeds.
    timeout_seconds: float = 5.0
    breaker_failures: int = 5
    breaker_reset_seconds: float = 30.0
    # Reads national phone numbers the back end stores ("020 7946 0958") for the privacy rule.
    phone_region: str | None = None
    sql: SqlSettings = Field(default_factory=SqlSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    erpnext: ErpnextSettings = Field(default_factory=ErpnextSettings)
    odoo: OdooSettings = Field(default_factory=OdooSettings)
