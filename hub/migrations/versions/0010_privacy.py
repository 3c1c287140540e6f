"""privacy

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23

Privacy (issue 9): export and erasure of a customer (what was erased, when, by whom).
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
