"""elected singletons: the lease table

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04

lease: one row per loop that must run in one process among all the hub's processes (an IMAP
mailbox's poller, a Telegram bot's poller, segment recomputation, demand push); its holder renews
it every few seconds and another process takes it over once it expires (hub/runtime/leases.py).
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'lease',
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('holder', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('generation', sa.BigInteger(), nullable=False),
        sa.Column('acquired_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('lease')
