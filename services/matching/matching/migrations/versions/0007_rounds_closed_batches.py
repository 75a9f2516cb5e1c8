"""rounds: a lock row per workspace and period, closed batches, runs by workspace and period

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('round_locks',
    sa.Column('workspace_id', sa.String(length=36), nullable=False),
    sa.Column('period', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('workspace_id', 'period')
    )
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index('ix_runs_workspace_id_period', ['workspace_id', 'period'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index('ix_runs_workspace_id_period')
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_column('closed_at')
    op.drop_table('round_locks')
