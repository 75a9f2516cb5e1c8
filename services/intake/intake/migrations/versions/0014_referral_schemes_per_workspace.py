"""referral schemes belong to a workspace or to the national list (scope); existing ones become national

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 23:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

NAMES = 'code, name_nl, name_en, url, themes, active, updated_at'


def _table(name: str, with_scope: bool) -> None:
    columns = [sa.Column('scope', sa.String(length=36), nullable=False)] if with_scope else []
    op.create_table(name, *columns,
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name_nl', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('url', sa.String(length=300), nullable=False),
    sa.Column('themes', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'code') if with_scope else sa.PrimaryKeyConstraint('code')
    )


def upgrade() -> None:
    # The catalogue any coordinator could rewrite was meant as the national list: its schemes stay national
    # (the operator reviews them), and each workspace now keeps its own schemes beside them.
    _table('referral_schemes_scoped', with_scope=True)
    op.execute(f"INSERT INTO referral_schemes_scoped (scope, {NAMES}) "  # noqa: S608 - constant names
               f"SELECT 'national', {NAMES} FROM referral_schemes")
    op.drop_table('referral_schemes')
    op.rename_table('referral_schemes_scoped', 'referral_schemes')


def downgrade() -> None:
    _table('referral_schemes_flat', with_scope=False)
    op.execute(f"INSERT INTO referral_schemes_flat ({NAMES}) "  # noqa: S608 - constant names
               f"SELECT {NAMES} FROM referral_schemes WHERE scope = 'national'")
    op.drop_table('referral_schemes')
    op.rename_table('referral_schemes_flat', 'referral_schemes')
