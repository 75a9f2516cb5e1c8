"""workspaces announced to matching and scheduling; batches re-announced by the reconciliation

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 01:10:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('announced_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('announced_message_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('reannounced_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reannouncements', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_column('reannouncements')
        batch_op.drop_column('reannounced_at')
        batch_op.drop_column('announced_message_id')
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.drop_column('announced_at')
