"""rounds over several workspaces: the workspaces of each batch and run

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('workspace_ids', sa.JSON(), nullable=True))
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('workspace_ids', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('workspace_ids')
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_column('workspace_ids')
