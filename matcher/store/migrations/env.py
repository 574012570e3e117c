"""Alembic's environment for the referral store. It only runs on a connection handed over by
:mod:`matcher.store.migrate` (``matcher db upgrade``), inside that caller's transaction, which
holds the lock that keeps two upgrades from running at once."""

from __future__ import annotations

from alembic import context

from matcher.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError(
        "the referral store's migrations run through matcher.store.upgrade "
        '("matcher db upgrade"), not the alembic command'
    )

context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():  # a no-op: the caller's transaction is already open
    context.run_migrations()
