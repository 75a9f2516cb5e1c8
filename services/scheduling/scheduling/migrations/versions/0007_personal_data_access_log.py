"""personal-data access log (append-only)

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa
from werkplaats_shared.audit import TABLE, append_only_ddl, drop_append_only_ddl


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(TABLE,
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('subject_type', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=True),
    sa.Column('actor_organisation_id', sa.String(length=36), nullable=True),
    sa.Column('actor_role', sa.String(length=20), nullable=True),
    sa.Column('actor_key_id', sa.String(length=32), nullable=True),
    sa.Column('method', sa.String(length=10), nullable=True),
    sa.Column('route', sa.String(length=200), nullable=True),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('message_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_personal_data_access_log_at'), TABLE, ['at'], unique=False)
    op.create_index(op.f('ix_personal_data_access_log_subject_id'), TABLE, ['subject_id'], unique=False)
    dialect = op.get_bind().dialect.name
    for statement in append_only_ddl(TABLE):
        if statement.dialect == dialect:
            op.execute(statement.sql)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in drop_append_only_ddl(TABLE):
        if statement.dialect == dialect:
            op.execute(statement.sql)
    op.drop_index(op.f('ix_personal_data_access_log_subject_id'), table_name=TABLE)
    op.drop_index(op.f('ix_personal_data_access_log_at'), table_name=TABLE)
    op.drop_table(TABLE)
