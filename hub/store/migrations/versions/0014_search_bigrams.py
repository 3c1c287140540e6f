"""inbox search: two-character texts through bigram indexes (PostgreSQL)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23

A text of two characters has no trigram, so pg_trgm's indexes (migration 0003) cannot find it:
the inbox checked the newest conversations, then ran the plain query over all of them (~190 ms
at 100,000 conversations for a text that matches nothing). Migration 0013 solved it for SQLite
through the FTS5 index's vocabulary; PostgreSQL has no such thing to read, so it gets an index
of the two-character substrings themselves.

PostgreSQL: `search_bigrams(text)`, the distinct two-character substrings of lower(text) (an
empty array for a text under two characters, NULL for NULL), and GIN indexes on it for the three
searched columns. hub/conversations/search/substrings.py asks `search_bigrams(column) @> search_bigrams(q)` AND
`column ILIKE pattern`: the array condition is only a prefilter read from the index, the ILIKE
decides, so what is found is exactly what the plain query finds. PostgreSQL's ILIKE (UTF-8)
compares lower(text) with lower(pattern), the function's lower: with the libc provider (the
default), which folds character by character, whatever ILIKE finds holds the bigrams. The prefilter could
miss only where lower() folds in context or changes lengths (the ICU provider: a final sigma,
'İ' -> 'i̇'; the bigrams of q, not lower(q) as one element, cover the latter) or where a column's
collation folds differently from the database's (q's): exotic enough to accept.

The function is SQL built from pg_catalog functions only (found whatever the search_path, as
restores and autovacuum set it); not inlined (an aggregate over generate_series), which the
expression indexes do not need: the planner matches the call itself (EXPLAIN shows a bitmap scan
of the index for `search_bigrams(subject) @> '{zq}'`). STRICT, IMMUTABLE, PARALLEL SAFE.

Cost: building, ~4.5 s for a store of 100,000 conversations (50,000 with a subject), 40,000
customers and 48,000 addresses (1.9 s, 0.8 s and 1.8 s; most of it the function, ~10-20 µs a
call), writers on those tables waiting meanwhile (CREATE INDEX, not CONCURRENTLY: the migration
runs in a transaction); 4.8 MB of indexes (pg_trgm's three: 7.9 MB). Each later write of a
searched column: the function once and a GIN entry through its pending list (512 kB, as in
0003): an UPDATE of 10,000 subjects took 0.3-0.7 s longer (~30-70 µs a row, noisy). A search of
two characters matching nothing: ~200 ms -> ~20 ms at that size.

SQLite: nothing (0013). A PostgreSQL where the function cannot be created (no right to create in
the schema): the migration logs it and creates nothing; the inbox then searches two characters
as before (hub/conversations/search/ checks what exists).

Every object is named search_*: the model comparison in the tests, and autogenerate, leave the
indexes alone (they are not SQLModel tables).
"""

import logging

from alembic import op
from sqlalchemy.exc import DBAPIError

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

FUNCTION = "search_bigrams"
# (table, column, the index)
SEARCHED = (
    ("conversation", "subject", "search_conversation_subject_bigrams"),
    ("customer", "name", "search_customer_name_bigrams"),
    ("identity", "address", "search_identity_address_bigrams"),
)

# lower() once, then each position's two characters; array_agg over no positions (a text under two
# characters) is NULL, hence the coalesce: an empty array, which no search's bigram is in.
CREATE_FUNCTION = f"""
CREATE FUNCTION {FUNCTION}(t text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT coalesce(array_agg(DISTINCT substr(l, i, 2)), '{{}}')
    FROM (SELECT lower(t) AS l) AS folded, generate_series(1, length(l) - 1) AS i
$$
"""


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(CREATE_FUNCTION)
            for table, column, index in SEARCHED:
                # 512 kB pending list, as migration 0003's: every search reads through it.
                conn.exec_driver_sql(
                    f"CREATE INDEX {index} ON {table} USING gin ({FUNCTION}({column})) WITH (gin_pending_list_limit = 512)"
                )
    except DBAPIError as exc:  # not allowed to create a function in the schema
        log.warning("no bigram indexes for inbox search (%s): two-character searches stay a scan", exc)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for _, _, index in SEARCHED:
        op.execute(f"DROP INDEX IF EXISTS {index}")
    op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}(text)")
