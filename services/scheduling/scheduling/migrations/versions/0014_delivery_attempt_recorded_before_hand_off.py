"""delivery attempts recorded before the SMTP hand-off: state, Message-ID, possible duplicate

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 01:20:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.String(length=12), server_default='done', nullable=False))
        batch_op.add_column(sa.Column('message_id', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('possible_duplicate', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('possible_duplicate')
        batch_op.drop_column('message_id')
        batch_op.drop_column('state')
