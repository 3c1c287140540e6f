"""customer value and segments

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23

Customer value: order value and frequency from the SCM back end and contact history; segments.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, not batch mode: on SQLite batch mode would copy the table and lose its
    # full-text search triggers (migration 0003).
    op.add_column('customer', sa.Column('segment_locked', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table('customer_value',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('order_value', sa.Float(), nullable=False),
    sa.Column('order_count', sa.Integer(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('contacts', sa.Integer(), nullable=False),
    sa.Column('messages', sa.Integer(), nullable=False),
    sa.Column('window_days', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('orders_as_of', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('computed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('customer_id')
    )
    with op.batch_alter_table('customer_value', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_value_due_at'), ['due_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('customer_value', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_value_due_at'))
    op.drop_table('customer_value')
    op.drop_column('customer', 'segment_locked')  # SQLite 3.35+ drops a column in place
