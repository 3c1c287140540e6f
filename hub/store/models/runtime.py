"""What the hub's processes share to run together: the leases of the loops that must run once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel


class Lease(SQLModel, table=True):
    """Who runs a loop that must run once among all the hub's processes (a mailbox's poller, a
    bot's poller, the segment recomputation): hub/runtime/leases.py. Times are the database's
    clock (now() in every statement), never a process's, so machines' clocks may differ. The
    generation grows at every change of holder: a fencing token, so a holder that was away
    cannot renew a lease another took meanwhile."""

    __tablename__ = "lease"

    name: str = Field(primary_key=True, max_length=200)
    holder: str = Field(max_length=200)
    generation: int = Field(sa_column=Column(BigInteger, nullable=False))
    acquired_at: datetime
    expires_at: datetime
