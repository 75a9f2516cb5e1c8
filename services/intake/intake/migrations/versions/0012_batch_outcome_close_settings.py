"""batches: how the last run ended, closing (released assignments), auto_publish kept for re-runs

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auto_publish', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('released_assignment_ids', sa.JSON(), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('last_run_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('last_run_status', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('last_run_trigger', sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column('last_run_ended_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_run_error', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('last_run_diagnosis', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('batches', schema=None) as batch_op:
        for column in ('last_run_diagnosis', 'last_run_error', 'last_run_ended_at', 'last_run_trigger',
                       'last_run_status', 'last_run_id', 'released_assignment_ids', 'closed_at', 'auto_publish'):
            batch_op.drop_column(column)
