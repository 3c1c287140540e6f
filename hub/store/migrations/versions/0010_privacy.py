"""privacy

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23

Privacy and reports. Privacy needs no table of its own (export and erasure are recorded
in the audit log); the reports find a range of days by creation time through two indexes.
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


# Plain create_index, not batch_alter_table: on SQLite a batch may rebuild the table, and a rebuilt
# table loses the inbox search triggers of migration 0003.
def upgrade() -> None:
    op.create_index('ix_conversation_created', 'conversation', ['created_at', 'channel'], unique=False)
    op.create_index('ix_message_inbound_created', 'message', ['created_at', 'channel'], unique=False,
                    sqlite_where=sa.text("direction = 'inbound'"),
                    postgresql_where=sa.text("direction = 'inbound'"))


def downgrade() -> None:
    op.drop_index('ix_message_inbound_created', table_name='message')
    op.drop_index('ix_conversation_created', table_name='conversation')
