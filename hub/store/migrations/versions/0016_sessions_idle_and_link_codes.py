"""sessions end when idle; link codes say who issued them; raw inbound files found by their hash

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04

agent_session.last_seen_at: when the session was last used (written at most every few minutes,
hub/auth.py); a session unused for session_idle_hours ends. Sessions of before the upgrade count
from their creation.

link_code.created_by: the actor who issued the code (agent:<id> or token:<id>), shown with the
customer's codes.

search_message_raw_sha256: the messages whose raw input (a call's transcript document, a mail's
source: metadata.raw_sha256, a file in the blob store) is a given file. Erasing a customer deletes
their raw files unless another message uses the same one (the store keeps identical files once);
without the index that question read every message. Partial: only messages with a raw file have
an entry. Named search_* like the other objects the models do not describe (hub/db.py).
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


# Plain add_column, not batch_alter_table: on SQLite a batch may rebuild the table (and the
# columns are nullable, which ALTER TABLE ADD COLUMN allows).
def upgrade() -> None:
    op.add_column('agent_session', sa.Column('last_seen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.add_column('link_code', sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    # The same expression as hub/privacy.py's RAW_SHA (the planner uses the index only for it).
    raw = "json_extract(metadata, '$.raw_sha256')" if op.get_bind().dialect.name == "sqlite" else "(metadata ->> 'raw_sha256')"
    op.execute(f"CREATE INDEX search_message_raw_sha256 ON message ({raw}) WHERE {raw} IS NOT NULL")


def downgrade() -> None:
    op.execute('DROP INDEX IF EXISTS search_message_raw_sha256')
    # ALTER TABLE ... DROP COLUMN: PostgreSQL, and SQLite since 3.35.
    op.execute('ALTER TABLE link_code DROP COLUMN created_by')
    op.execute('ALTER TABLE agent_session DROP COLUMN last_seen_at')
