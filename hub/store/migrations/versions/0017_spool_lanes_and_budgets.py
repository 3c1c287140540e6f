"""inbound spool: per-item time budget, per-channel claims

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04

inbound_spool.budget_seconds: the time budget of one item when an admin retried it with a larger
one than the hub's default (NULL: the default, spool_item_budget_seconds).

ix_inbound_spool_lane (channel, status, next_attempt_at, id): each channel's spool worker claims
its own due items; with the index (status, next_attempt_at, id) alone, claiming a Telegram update
behind a backlog of 10,000 mails reads past every one of them.
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbound_spool', schema=None) as batch_op:
        batch_op.add_column(sa.Column('budget_seconds', sa.Float(), nullable=True))
        batch_op.create_index('ix_inbound_spool_lane', ['channel', 'status', 'next_attempt_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('inbound_spool', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_spool_lane')
        batch_op.drop_column('budget_seconds')
