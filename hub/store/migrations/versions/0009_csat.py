"""satisfaction surveys

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23

Satisfaction: one survey per resolved conversation, its answer and comment.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('csat_survey',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agent.id'], ),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('conversation_id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('csat', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column('agent_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('answered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_foreign_key('fk_csat_agent_id_agent', 'agent', ['agent_id'], ['id'])
        # One answer per conversation.
        batch_op.drop_index('ix_csat_conversation_id')
        batch_op.create_index('ix_csat_conversation_id', ['conversation_id'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('csat', schema=None) as batch_op:
        batch_op.drop_index('ix_csat_conversation_id')
        batch_op.create_index('ix_csat_conversation_id', ['conversation_id'], unique=False)
        batch_op.drop_constraint('fk_csat_agent_id_agent', type_='foreignkey')
        batch_op.drop_column('answered_at')
        batch_op.drop_column('agent_id')
        batch_op.drop_column('channel')
    op.drop_table('csat_survey')
