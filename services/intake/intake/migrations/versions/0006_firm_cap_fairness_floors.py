"""firm cap on concurrent teams, batch fairness floors

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_concurrent_teams', sa.Integer(), nullable=True))

    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fairness_floors', sa.JSON(), server_default='[]', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_column('fairness_floors')

    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_column('max_concurrent_teams')
