"""Customer value: each customer's order and contact figures over the segment window, from which
the segment is computed."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from hub.store.models.base import utcnow


class CustomerValue(SQLModel, table=True):
    """A customer's figures over the segment window, as last computed (hub/segments/value.py).

    source: "scm" (orders from the back end), "contacts" (no back end, or it cannot list a
    customer's orders: contact history only), "stale" (the back end was down: the order figures are
    the previous ones, retried later). due_at: when the background worker recomputes them next."""

    __tablename__ = "customer_value"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", unique=True)
    order_value: float = 0.0
    order_count: int = 0
    currency: str = Field(max_length=8)
    contacts: int = 0          # conversations opened in the window
    messages: int = 0          # inbound messages in the window
    window_days: int
    source: str = Field(max_length=16)
    error: str | None = Field(default=None, max_length=500)
    orders_as_of: datetime | None = None   # when the back end last answered for this customer
    computed_at: datetime = Field(default_factory=utcnow)
    due_at: datetime = Field(default_factory=utcnow, index=True)
