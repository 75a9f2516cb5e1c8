"""known workspaces: a batch is acted on only for a workspace intake announced

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 01:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('known_workspaces',
    sa.Column('workspace_id', sa.String(length=36), nullable=False),
    sa.Column('coordinator_id', sa.String(length=36), nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('workspace_id')
    )
    # the workspaces of the batches matching already holds were announced by their batches
    op.execute(
        "INSERT INTO known_workspaces (workspace_id, coordinator_id, registered_at) "
        "SELECT workspace_id, MIN(coordinator_id), MIN(created_at) FROM batches GROUP BY workspace_id"
    )


def downgrade() -> None:
    op.drop_table('known_workspaces')
