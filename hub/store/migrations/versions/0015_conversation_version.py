"""conversation version: optimistic concurrency for agents' changes

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-24

conversation.version counts the changes of what agents see and decide on (hub/models.py). Every
write of those columns bumps it in its own UPDATE, and an agent's change names the version it
was made on (the inbox's sidebar, the API's If-Match or `version`): a change made on a stale
page is refused instead of silently overwriting a newer one. Existing conversations start at 1.
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, not batch mode: on SQLite batch mode would copy the table and lose its
    # full-text search triggers (migration 0003). With a constant default, both databases add the
    # column without rewriting the table.
    op.add_column('conversation', sa.Column('version', sa.Integer(), nullable=False, server_default=sa.text('1')))


def downgrade() -> None:
    # SQLite 3.35+ drops a column in place (the triggers name other columns, so they stay).
    op.drop_column('conversation', 'version')
