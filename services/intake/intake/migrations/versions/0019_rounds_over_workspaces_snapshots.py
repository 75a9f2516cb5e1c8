"""rounds over several workspaces; large batch snapshots kept for matching to fetch (claim-check)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('workspace_ids', sa.JSON(), nullable=True))
    op.create_table(
        'batch_snapshots',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('batch_id', sa.String(length=36), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('size_bytes', sa.Integer(), nullable=False),
        sa.Column('body', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['batch_id'], ['batches.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('batch_snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_batch_snapshots_batch_id'), ['batch_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('batch_snapshots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_batch_snapshots_batch_id'))
    op.drop_table('batch_snapshots')
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_column('workspace_ids')
