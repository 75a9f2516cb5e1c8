"""list paging indexes: lists page in the database in the order of these indexes

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 07:00:00.000000
"""
from alembic import op


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

INDEXES = [
    ("ix_notices_firm_id_created_at_id", "notices", ["firm_id", "created_at", "id"]),
    ("ix_notices_coordinator_id_created_at_id", "notices", ["coordinator_id", "created_at", "id"]),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
