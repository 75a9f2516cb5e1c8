"""list paging: indexes in the lists' orders; a run's figures apart from its explanations (the runs list
reads no explanations)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 07:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

INDEXES = [
    ("ix_runs_coordinator_id_created_at_id", "runs", ["coordinator_id", "created_at", "id"]),
    ("ix_matches_run_id_assignment_id_id", "matches", ["run_id", "assignment_id", "id"]),
    ("ix_matches_firm_id_run_id_assignment_id_id", "matches", ["firm_id", "run_id", "assignment_id", "id"]),
    ("ix_matches_institution_id_run_id_assignment_id_id", "matches", ["institution_id", "run_id", "assignment_id", "id"]),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('figures', sa.JSON(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE runs SET figures = explanations -> 'figures' WHERE explanations IS NOT NULL")
    else:
        op.execute("UPDATE runs SET figures = json_extract(explanations, '$.figures') WHERE explanations IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('figures')
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
