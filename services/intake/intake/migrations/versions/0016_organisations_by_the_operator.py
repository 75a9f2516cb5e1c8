"""organisations created and deactivated by the operator: a name key to find duplicates, deactivated_at

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 07:20:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_key', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_organisations_name_key'), ['name_key'], unique=False)
    organisations = sa.table('organisations', sa.column('id', sa.String), sa.column('name', sa.String),
                             sa.column('name_key', sa.String))
    conn = op.get_bind()
    for org_id, name in conn.execute(sa.select(organisations.c.id, organisations.c.name)).all():
        conn.execute(organisations.update().where(organisations.c.id == org_id)
                     .values(name_key=" ".join(name.split()).casefold()[:200]))


def downgrade() -> None:
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organisations_name_key'))
        batch_op.drop_column('deactivated_at')
        batch_op.drop_column('name_key')
