"""a run's explanations in their own table (run_explanations: JSON text, written and read with msgspec),
written once when its result is recorded, so that writing a run's row afterwards (published, superseded) no
longer rewrites megabytes of explanations; the explanations are copied over. And the matches' single-column
indexes on run_id, firm_id and institution_id go: each column leads one of the indexes 0011 made (the lists'
orders), which serves the same lookups, so a run's thousands of matches are written into four indexes
instead of seven

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


# the indexes that 0011's composite ones make redundant (name, column)
REDUNDANT = [("ix_matches_run_id", "run_id"), ("ix_matches_firm_id", "firm_id"),
             ("ix_matches_institution_id", "institution_id")]


def upgrade() -> None:
    op.create_table(
        'run_explanations',
        sa.Column('run_id', sa.String(length=36), nullable=False),
        sa.Column('explanations', sa.Text(), nullable=False),  # JSON text (written and read with msgspec)
        sa.ForeignKeyConstraint(['run_id'], ['runs.id']),
        sa.PrimaryKeyConstraint('run_id'),
    )
    # a run without explanations has none (SQL NULL, or JSON null where None was written)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("INSERT INTO run_explanations (run_id, explanations) SELECT id, CAST(explanations AS TEXT) "
                   "FROM runs WHERE explanations IS NOT NULL AND CAST(explanations AS TEXT) <> 'null'")
    else:
        op.execute("INSERT INTO run_explanations (run_id, explanations) SELECT id, explanations FROM runs "
                   "WHERE explanations IS NOT NULL AND explanations <> 'null'")
    # a plain ALTER on both databases (SQLite 3.35+), as 0015 does: a batch copy of runs on SQLite would drop
    # the table that matches, run_snapshots and run_explanations refer to, with foreign keys on
    op.execute("ALTER TABLE runs DROP COLUMN explanations")
    for name, _column in REDUNDANT:
        op.drop_index(name, table_name='matches')


def downgrade() -> None:
    for name, column in reversed(REDUNDANT):
        op.create_index(name, 'matches', [column], unique=False)
    op.execute("ALTER TABLE runs ADD COLUMN explanations JSON")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE runs SET explanations = "
                   "(SELECT CAST(e.explanations AS JSON) FROM run_explanations e WHERE e.run_id = runs.id)")
    else:
        op.execute("UPDATE runs SET explanations = "
                   "(SELECT e.explanations FROM run_explanations e WHERE e.run_id = runs.id)")
    op.drop_table('run_explanations')
