"""inbox: tags on conversations, snooze until a time

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04

conversation_tag: the labels agents put on conversations (one row per conversation and tag, names
folded), indexed by tag for the list's tag= filter and the reports' count per tag.
conversation.snoozed_until: while a conversation's status is 'snoozed', when it opens again by
itself; indexed for the snooze worker, which looks for the ones whose time has come.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'conversation_tag',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=False),
        sa.Column('tag', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('conversation_id', 'tag', name='uq_conversation_tag'),
    )
    op.create_index('ix_conversation_tag_tag', 'conversation_tag', ['tag', 'conversation_id'])
    # A plain ADD COLUMN, not batch mode: on SQLite batch mode would copy the table and lose its
    # full-text search triggers (migration 0003).
    op.add_column('conversation', sa.Column('snoozed_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.create_index('ix_conversation_snoozed', 'conversation', ['snoozed_until'])


def downgrade() -> None:
    op.drop_index('ix_conversation_snoozed', table_name='conversation')
    op.drop_column('conversation', 'snoozed_until')  # SQLite 3.35+: in place, the triggers stay
    op.drop_index('ix_conversation_tag_tag', table_name='conversation_tag')
    op.drop_table('conversation_tag')
