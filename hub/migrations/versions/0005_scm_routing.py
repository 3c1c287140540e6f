"""scm routing

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

SCM routing (issue 7): routed messages, facts, escalations, demand.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
