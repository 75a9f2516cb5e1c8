"""stored batch snapshots rewritten by an erasure keep the digests they had before

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 12:45:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('batch_snapshots', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replaces_sha256', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('batch_snapshots', schema=None) as batch_op:
        batch_op.drop_column('replaces_sha256')
