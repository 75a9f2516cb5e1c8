"""kickoff agreements: when the firm and the team's institution agreed to the proposed time

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 07:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('kickoffs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('firm_agreed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('institution_agreed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('kickoffs', schema=None) as batch_op:
        batch_op.drop_column('institution_agreed_at')
        batch_op.drop_column('firm_agreed_at')
