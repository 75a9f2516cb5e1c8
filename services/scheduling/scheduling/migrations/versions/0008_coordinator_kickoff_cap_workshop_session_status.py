"""coordinator kickoff cap, workshop session status

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 00:00:50.060458
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('coordinator_settings',
    sa.Column('coordinator_id', sa.String(length=36), nullable=False),
    sa.Column('kickoff_daily_cap', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('coordinator_id')
    )
    with op.batch_alter_table('workshop_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=20), server_default='running', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('workshop_sessions', schema=None) as batch_op:
        batch_op.drop_column('status')

    op.drop_table('coordinator_settings')
