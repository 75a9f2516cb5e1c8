"""coordinator accounts, api key scopes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 12:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_key_scopes',
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=True),
    sa.Column('rotated_from', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['key_id'], ['api_keys.key_id'], ),
    sa.PrimaryKeyConstraint('key_id')
    )
    op.create_table('coordinator_accounts',
    sa.Column('id', sa.String(length=16), nullable=False),
    sa.Column('organisation_id', sa.String(length=36), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email', name='uq_coordinator_accounts_email')
    )
    with op.batch_alter_table('coordinator_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coordinator_accounts_organisation_id'), ['organisation_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('coordinator_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coordinator_accounts_organisation_id'))

    op.drop_table('coordinator_accounts')
    op.drop_table('api_key_scopes')
