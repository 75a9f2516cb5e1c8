"""traces go on past the queue: a notice keeps the trace context it was made in (its deliveries are spans of
that trace), each delivery attempt keeps the trace id, a plan job the trace context it was asked in

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 09:50:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('traceparent', sa.String(length=64), nullable=True))
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trace_id', sa.String(length=32), nullable=True))
    with op.batch_alter_table('plan_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('traceparent', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('plan_jobs', schema=None) as batch_op:
        batch_op.drop_column('traceparent')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('trace_id')
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_column('traceparent')
