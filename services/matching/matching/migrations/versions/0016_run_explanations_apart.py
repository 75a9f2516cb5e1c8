"""a run's explanations in their own table (run_explanations), written once when its result is recorded, so
that writing a run's row afterwards (published, superseded) no longer rewrites megabytes of explanations; the
explanations are copied over

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 12:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'run_explanations',
        sa.Column('run_id', sa.String(length=36), nullable=False),
        sa.Column('explanations', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id']),
        sa.PrimaryKeyConstraint('run_id'),
    )
    # a run without explanations has none (SQL NULL, or JSON null where None was written)
    text = "CAST(explanations AS TEXT)" if op.get_bind().dialect.name == "postgresql" else "explanations"
    op.execute("INSERT INTO run_explanations (run_id, explanations) SELECT id, explanations FROM runs "
               f"WHERE explanations IS NOT NULL AND {text} <> 'null'")
    # a plain ALTER on both databases (SQLite 3.35+), as 0015 does: a batch copy of runs on SQLite would drop
    # the table that matches, run_snapshots and run_explanations refer to, with foreign keys on
    op.execute("ALTER TABLE runs DROP COLUMN explanations")


def downgrade() -> None:
    op.execute("ALTER TABLE runs ADD COLUMN explanations JSON")
    op.execute("UPDATE runs SET explanations = "
               "(SELECT e.explanations FROM run_explanations e WHERE e.run_id = runs.id)")
    op.drop_table('run_explanations')
