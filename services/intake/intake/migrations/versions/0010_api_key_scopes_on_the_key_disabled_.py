"""api key scopes on the key (replicated to every service), disabled accounts

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 00:24:33.428234
"""
from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

ALL_SCOPES = '["read", "write", "keys"]'


def upgrade() -> None:
    op.create_table('disabled_accounts',
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('organisation_id', sa.String(length=36), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('account_id')
    )
    op.execute("INSERT INTO disabled_accounts (account_id, organisation_id, disabled_at) "
               "SELECT id, organisation_id, disabled_at FROM coordinator_accounts WHERE disabled_at IS NOT NULL")

    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scopes', sa.JSON(), server_default=ALL_SCOPES, nullable=False))
    op.execute("UPDATE api_keys SET scopes = (SELECT s.scopes FROM api_key_scopes s WHERE s.key_id = api_keys.key_id) "
               "WHERE key_id IN (SELECT key_id FROM api_key_scopes)")

    with op.batch_alter_table('api_key_scopes', schema=None) as batch_op:
        batch_op.drop_column('scopes')


def downgrade() -> None:
    with op.batch_alter_table('api_key_scopes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scopes', sa.JSON(), nullable=True))
    op.execute("UPDATE api_key_scopes SET scopes = (SELECT k.scopes FROM api_keys k WHERE k.key_id = api_key_scopes.key_id)")
    with op.batch_alter_table('api_key_scopes', schema=None) as batch_op:
        batch_op.alter_column('scopes', existing_type=sa.JSON(), nullable=False)

    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('scopes')

    op.drop_table('disabled_accounts')
