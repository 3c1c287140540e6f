"""message search words stored (PostgreSQL)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23

PostgreSQL: the words of each message, the expression migration 0011 indexed, become a stored
generated column, `search_tsv`, and the GIN index moves onto it. The newest matches of a common
word are found by walking the newest messages and checking each one's words: read from the row,
that check costs well under a microsecond, where computing the words again cost ~20; the planner
can then take that walk for a common word and the index for a rare one (hub/conversations/search/message_words.py).
The column is written with the row, so an edit or an erasure changes it in the same statement.
Upgrading rewrites the message table once.

SQLite: nothing (its FTS5 table holds the words).
"""

from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# Equal to hub.conversations.search.message_words.PG_DOCUMENT and to migration 0011's (a test checks both).
PG_CJK_PATTERN = "([\\u3040-\\u30ff\\u3400-\\u4dbf\\u4e00-\\u9fff\\uac00-\\ud7af\\uf900-\\ufaff])"
PG_CONFIG = "search_words"
PG_DOCUMENT = f"to_tsvector('{PG_CONFIG}'::regconfig, regexp_replace(coalesce(text, ''), '{PG_CJK_PATTERN}', ' \\1 ', 'g'))"
PG_COLUMN = "search_tsv"
PG_INDEX = "search_message_tsv"
OLD_INDEX = "search_message_text_fts"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE message ADD COLUMN {PG_COLUMN} tsvector GENERATED ALWAYS AS ({PG_DOCUMENT}) STORED")
    # See migration 0011 for the pending list's size.
    op.execute(f"CREATE INDEX {PG_INDEX} ON message USING gin ({PG_COLUMN}) WITH (gin_pending_list_limit = 512)")
    op.execute(f"DROP INDEX IF EXISTS {OLD_INDEX}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"CREATE INDEX {OLD_INDEX} ON message USING gin (({PG_DOCUMENT})) WITH (gin_pending_list_limit = 512)")
    op.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")
    op.execute(f"ALTER TABLE message DROP COLUMN IF EXISTS {PG_COLUMN}")
