"""a run's snapshot in its own table (run_snapshots), so that writing a run's row (its stage, lease,
progress, result) no longer rewrites megabytes of snapshot; the snapshots are copied over

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 10:20:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'run_snapshots',
        sa.Column('run_id', sa.String(length=36), nullable=False),
        sa.Column('snapshot', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id']),
        sa.PrimaryKeyConstraint('run_id'),
    )
    op.execute("INSERT INTO run_snapshots (run_id, snapshot) SELECT id, snapshot FROM runs")
    # a plain ALTER on both databases (SQLite 3.35+): a batch copy of runs on SQLite would drop the table
    # that matches and run_snapshots refer to, with foreign keys on
    op.execute("ALTER TABLE runs DROP COLUMN snapshot")


def downgrade() -> None:
    op.execute("ALTER TABLE runs ADD COLUMN snapshot JSON")
    op.execute("UPDATE runs SET snapshot = (SELECT s.snapshot FROM run_snapshots s WHERE s.run_id = runs.id)")
    if op.get_bind().dialect.name == "postgresql":  # on SQLite the column stays nullable (see upgrade)
        op.alter_column('runs', 'snapshot', existing_type=sa.JSON(), nullable=False)
    op.drop_table('run_snapshots')
