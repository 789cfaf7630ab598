"""Alembic environment: redraft runs migrations in-process on the connection it opened."""

from alembic import context

from redraft.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "redraft migrations run through redraft.store.engine.migrate(engine), which passes a connection."
    )
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
