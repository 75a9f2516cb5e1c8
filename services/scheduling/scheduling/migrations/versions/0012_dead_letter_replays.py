"""dead letter replays (the audit record of every replayed dead letter)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 23:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dead_letter_replays',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('replayed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('queue', sa.String(length=200), nullable=False),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('dead_letter_replays', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dead_letter_replays_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dead_letter_replays_replayed_at'), ['replayed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dead_letter_replays', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dead_letter_replays_replayed_at'))
        batch_op.drop_index(batch_op.f('ix_dead_letter_replays_message_id'))

    op.drop_table('dead_letter_replays')
