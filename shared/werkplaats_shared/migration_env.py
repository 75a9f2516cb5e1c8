"""The body of every service's Alembic env.py: run migrations on the connection handed in by
``db.upgrade_database`` or, from the alembic command line, on WERKPLAATS_DATABASE_URL."""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context


def run_migrations(target_metadata: sa.MetaData) -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
        return
    url = os.environ.get("WERKPLAATS_DATABASE_URL", "sqlite:///:memory:")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata,
                          render_as_batch=conn.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
