"""agents choose their interface language

Revision ID: 0023
Revises: 0021
Create Date: 2026-12-04

agent.language: the language of the agent's inbox (a code of hub.contract.i18n.LANGUAGES: en, zh);
null until the agent's first page after sign-in sets it from the browser's Accept-Language.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0023'
down_revision = '0021'
branch_labels = None
depends_on = None


# Plain add_column, not batch_alter_table: on SQLite a batch may rebuild the table (and the column
# is nullable, which ALTER TABLE ADD COLUMN allows).
def upgrade() -> None:
    op.add_column('agent', sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN: PostgreSQL, and SQLite since 3.35.
    op.execute('ALTER TABLE agent DROP COLUMN language')
