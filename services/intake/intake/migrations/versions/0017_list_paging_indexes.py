"""list paging indexes: lists page in the database in the order of these indexes

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 07:00:00.000000
"""
from alembic import op


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

INDEXES = [
    ("ix_teams_institution_id_created_at_id", "teams", ["institution_id", "created_at", "id"]),
    ("ix_teams_created_at_id", "teams", ["created_at", "id"]),
    ("ix_assignments_firm_id_created_at_id", "assignments", ["firm_id", "created_at", "id"]),
    ("ix_assignments_created_at_id", "assignments", ["created_at", "id"]),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
