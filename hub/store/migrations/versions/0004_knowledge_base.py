"""knowledge base

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Knowledge base: articles, passages, suggestion feedback.

kb_chunk is dropped and created again in its new shape: passages are derived data (nothing wrote
the table before this revision, and `servicehub kb reindex` rebuilds them from the articles).
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('kb_article', schema=None) as batch_op:
        batch_op.add_column(sa.Column('format', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                      server_default='markdown'))
        batch_op.add_column(sa.Column('source_key', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
        batch_op.add_column(sa.Column('captured_from_message_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.create_unique_constraint('uq_kb_article_source_key', ['source_key'])
        batch_op.create_foreign_key('fk_kb_article_captured_from_message_id', 'message',
                                    ['captured_from_message_id'], ['id'])

    with op.batch_alter_table('kb_chunk', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kb_chunk_article_id'))
    op.drop_table('kb_chunk')
    op.create_table('kb_chunk',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('passage_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('heading', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('vector', sa.LargeBinary(), nullable=True),
    sa.Column('vector_model', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.ForeignKeyConstraint(['article_id'], ['kb_article.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('passage_id')
    )
    with op.batch_alter_table('kb_chunk', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kb_chunk_article_id'), ['article_id'], unique=False)

    op.create_table('kb_feedback',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('passage_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('verdict', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agent.id'], ),
    sa.ForeignKeyConstraint(['article_id'], ['kb_article.id'], ),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('conversation_id', 'article_id', 'verdict', name='uq_kb_feedback_conversation_article_verdict')
    )
    with op.batch_alter_table('kb_feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kb_feedback_article_id'), ['article_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('kb_feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kb_feedback_article_id'))
    op.drop_table('kb_feedback')

    with op.batch_alter_table('kb_chunk', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kb_chunk_article_id'))
    op.drop_table('kb_chunk')
    op.create_table('kb_chunk',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['kb_article.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('kb_chunk', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kb_chunk_article_id'), ['article_id'], unique=False)

    with op.batch_alter_table('kb_article', schema=None) as batch_op:
        batch_op.drop_constraint('fk_kb_article_captured_from_message_id', type_='foreignkey')
        batch_op.drop_constraint('uq_kb_article_source_key', type_='unique')
        batch_op.drop_column('created_by')
        batch_op.drop_column('captured_from_message_id')
        batch_op.drop_column('source_key')
        batch_op.drop_column('format')
