"""known workspaces, batches and runs: a published run is acted on only for a batch intake announced

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 01:05:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('known_workspaces',
    sa.Column('workspace_id', sa.String(length=36), nullable=False),
    sa.Column('coordinator_id', sa.String(length=36), nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('workspace_id')
    )
    op.create_table('known_batches',
    sa.Column('batch_id', sa.String(length=36), nullable=False),
    sa.Column('workspace_id', sa.String(length=36), nullable=True),
    sa.Column('coordinator_id', sa.String(length=36), nullable=False),
    sa.Column('assignments', sa.JSON(), nullable=True),
    sa.Column('teams', sa.JSON(), nullable=True),
    sa.Column('announced_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('batch_id')
    )
    op.create_table('known_runs',
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('batch_id', sa.String(length=36), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('run_id')
    )
    with op.batch_alter_table('known_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_known_runs_batch_id'), ['batch_id'], unique=False)
    # what scheduling already acted on (its match notices) stays valid: those batches and runs are known,
    # without lists to check against
    op.execute(
        "INSERT INTO known_batches (batch_id, workspace_id, coordinator_id, assignments, teams, announced_at) "
        "SELECT batch_id, NULL, MIN(coordinator_id), NULL, NULL, MIN(created_at) FROM notices "
        "WHERE batch_id <> '' GROUP BY batch_id"
    )
    op.execute(
        "INSERT INTO known_runs (run_id, batch_id, received_at) "
        "SELECT run_id, MIN(batch_id), MIN(created_at) FROM notices WHERE run_id <> '' GROUP BY run_id"
    )


def downgrade() -> None:
    with op.batch_alter_table('known_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_known_runs_batch_id'))
    op.drop_table('known_runs')
    op.drop_table('known_batches')
    op.drop_table('known_workspaces')
