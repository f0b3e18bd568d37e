"""Alembic's entry point: runs the migrations on the connection trialwatch hands it.

trialwatch never reads an ``alembic.ini``: :mod:`trialwatch.storage.migrate` builds the
configuration and passes an open connection in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from trialwatch.storage._schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite alters most columns only by copying the table: batch mode does that for it.
    render_as_batch=True,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
