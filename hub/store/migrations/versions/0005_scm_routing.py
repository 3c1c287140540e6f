"""scm routing

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

SCM routing: routed messages, facts, escalations, demand.

Messages stored before this revision are marked routed (routed_at = created_at): routing starts
with what arrives from now on, and never answers old questions automatically.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

UNROUTED = "routed_at IS NULL AND direction = 'inbound'"


def upgrade() -> None:
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('routed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.execute("UPDATE message SET routed_at = created_at")
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.create_index('ix_message_unrouted', ['id'], unique=False,
                              sqlite_where=sa.text(UNROUTED), postgresql_where=sa.text(UNROUTED))

    op.create_table('scm_fact',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('disclosed', sa.Boolean(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('scm_fact', schema=None) as batch_op:
        batch_op.create_index('ix_scm_fact_conversation', ['conversation_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_scm_fact_message_id'), ['message_id'], unique=False)

    op.create_table('reply_draft',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('reply_draft', schema=None) as batch_op:
        batch_op.create_index('ix_reply_draft_conversation', ['conversation_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reply_draft_message_id'), ['message_id'], unique=False)

    op.create_table('routing_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('locked_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id')
    )

    op.create_table('escalation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('external_reference', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('external_url', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('dedupe_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('resolved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedupe_key')
    )
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.create_index('ix_escalation_conversation', ['conversation_id', 'id'], unique=False)

    op.create_table('escalation_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('escalation_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('external_reference', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('event_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['escalation_id'], ['escalation.id'], ),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('escalation_id', 'event_key', name='uq_escalation_event_key')
    )
    with op.batch_alter_table('escalation_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_escalation_event_escalation_id'), ['escalation_id'], unique=False)

    op.create_table('demand_count',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('sku', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('product_name', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('asked', sa.Integer(), nullable=False),
    sa.Column('unavailable', sa.Integer(), nullable=False),
    sa.Column('pushed_asked', sa.Integer(), nullable=False),
    sa.Column('pushed_unavailable', sa.Integer(), nullable=False),
    sa.Column('pushed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('day', 'sku', name='uq_demand_count_day_sku')
    )


def downgrade() -> None:
    op.drop_table('demand_count')
    with op.batch_alter_table('escalation_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_escalation_event_escalation_id'))
    op.drop_table('escalation_event')
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.drop_index('ix_escalation_conversation')
    op.drop_table('escalation')
    op.drop_table('routing_attempt')
    with op.batch_alter_table('reply_draft', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reply_draft_message_id'))
        batch_op.drop_index('ix_reply_draft_conversation')
    op.drop_table('reply_draft')
    with op.batch_alter_table('scm_fact', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scm_fact_message_id'))
        batch_op.drop_index('ix_scm_fact_conversation')
    op.drop_table('scm_fact')
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index('ix_message_unrouted', sqlite_where=sa.text(UNROUTED), postgresql_where=sa.text(UNROUTED))
        batch_op.drop_column('routed_at')
