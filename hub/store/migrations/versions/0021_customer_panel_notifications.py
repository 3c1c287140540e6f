"""customer notes, attributes and tags; agents' notifications

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04

customer_note / customer_attribute / customer_tag: what agents keep on a customer beyond its
identities (who wrote or changed each, and when). notification: what the hub tells one agent (a
mention, an assignment, a snoozed conversation back, an SLA warning), unique per agent and event.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'customer_note',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=True),
        sa.Column('author', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id']),
        sa.ForeignKeyConstraint(['agent_id'], ['agent.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_customer_note_customer_id', 'customer_note', ['customer_id'])
    op.create_table(
        'customer_attribute',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('customer_id', 'key', name='uq_customer_attribute_key'),
    )
    op.create_index('ix_customer_attribute_customer_id', 'customer_attribute', ['customer_id'])
    op.create_table(
        'customer_tag',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('tag', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('customer_id', 'tag', name='uq_customer_tag'),
    )
    op.create_index('ix_customer_tag_customer_id', 'customer_tag', ['customer_id'])
    op.create_index('ix_customer_tag_tag', 'customer_tag', ['tag'])
    op.create_table(
        'notification',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=True),
        sa.Column('text', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('dedupe_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('read_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['agent_id'], ['agent.id']),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('agent_id', 'dedupe_key', name='uq_notification_agent_key'),
    )
    op.create_index('ix_notification_agent', 'notification', ['agent_id', 'id'])
    op.create_index('ix_notification_conversation_id', 'notification', ['conversation_id'])


def downgrade() -> None:
    op.drop_table('notification')
    op.drop_table('customer_tag')
    op.drop_table('customer_attribute')
    op.drop_table('customer_note')
