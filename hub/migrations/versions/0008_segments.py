"""customer value and segments

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23

Customer value (issue 9): order value and frequency from the SCM back end and contact history; segments.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
