"""api key scopes, disabled accounts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 00:24:34.817849
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('disabled_accounts',
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('organisation_id', sa.String(length=36), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('account_id')
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scopes', sa.JSON(), server_default='["read", "write", "keys"]', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('scopes')

    op.drop_table('disabled_accounts')
