"""trace context with each outbox message; the trace id of the message that made a notice

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 08:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('traceparent', sa.String(length=64), nullable=True))
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trace_id', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_column('trace_id')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('traceparent')
