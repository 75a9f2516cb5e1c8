"""handover lists assignments left for a re-run

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 00:04:54.851100
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('handovers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rerun_pending_assignment_ids', sa.JSON(), server_default='[]', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('handovers', schema=None) as batch_op:
        batch_op.drop_column('rerun_pending_assignment_ids')
