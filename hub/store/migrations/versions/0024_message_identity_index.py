"""an index on message.identity_id

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04

Erasing a customer finds their messages by identity, and deleting an identity row (a merge, an
erasure) makes PostgreSQL check the foreign key from message: both read the whole message table
without this index.
"""
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_message_identity', 'message', ['identity_id'])


def downgrade() -> None:
    op.drop_index('ix_message_identity', table_name='message')
