"""known batches keep the names their notices use: titles, firm and institution names, team codes, period

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 04:40:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('known_batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('facts', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('known_batches', schema=None) as batch_op:
        batch_op.drop_column('facts')
