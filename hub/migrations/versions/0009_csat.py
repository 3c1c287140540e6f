"""satisfaction surveys

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23

Satisfaction (issue 9): one survey per resolved conversation, its answer and comment.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
