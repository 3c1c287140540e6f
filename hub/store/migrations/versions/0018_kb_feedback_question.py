"""knowledge base: the question an agent's verdict on a suggestion was about

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04

Suggestions learn from what agents chose (knowledge/feedback.py): a question like one where an
agent used an article ranks that article higher, "not helpful" pushes it down. For that each
"used" / "not_helpful" row of kb_feedback keeps the customer's question it was about, and the
question's embedding with the model that made it (as kb_chunk keeps its passages' embeddings),
so that a restarted hub or another process reads the vectors instead of running the model on
every past question. Rows recorded before this revision have no question and teach nothing.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('kb_feedback', schema=None) as batch_op:
        batch_op.add_column(sa.Column('question', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('question_vector', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('vector_model', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('kb_feedback', schema=None) as batch_op:
        batch_op.drop_column('vector_model')
        batch_op.drop_column('question_vector')
        batch_op.drop_column('question')
