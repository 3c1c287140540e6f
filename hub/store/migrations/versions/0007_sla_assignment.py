"""sla and assignment

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23

Service levels: business-hours calendars, SLA policies and timers, teams, agent availability, assignment.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_response_due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('resolution_due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('sla_policy', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        batch_op.create_index('ix_conversation_updated', ['updated_at'], unique=False)
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.create_index('ix_customer_updated', ['updated_at'], unique=False)
    op.create_table('team',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('team_member',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agent.id'], ),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('team_id', 'agent_id', name='uq_team_member')
    )
    with op.batch_alter_table('team_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_team_member_agent_id'), ['agent_id'], unique=False)
    op.create_table('agent_availability',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('available', sa.Boolean(), nullable=False),
    sa.Column('last_assigned_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agent.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('agent_id')
    )
    op.create_table('sla_clock',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('status_seen', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('first_response_warn_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('resolution_warn_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('next_check_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('assign_done', sa.Boolean(), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('conversation_id')
    )
    with op.batch_alter_table('sla_clock', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sla_clock_next_check_at'), ['next_check_at'], unique=False)
    op.create_table('sla_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('timer', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('stage', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('conversation_id', 'timer', 'stage', 'due_at', name='uq_sla_event')
    )


def downgrade() -> None:
    op.drop_table('sla_event')
    with op.batch_alter_table('sla_clock', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sla_clock_next_check_at'))
    op.drop_table('sla_clock')
    op.drop_table('agent_availability')
    with op.batch_alter_table('team_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_team_member_agent_id'))
    op.drop_table('team_member')
    op.drop_table('team')
    op.drop_index('ix_customer_updated', table_name='customer')
    op.drop_index('ix_conversation_updated', table_name='conversation')
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a batch: a batch copies the table,
    # which other tables' foreign keys refuse and which loses the search triggers of 0003.
    for column in ('sla_policy', 'resolution_due_at', 'first_response_due_at'):
        op.execute(f'ALTER TABLE conversation DROP COLUMN {column}')
