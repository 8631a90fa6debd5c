"""Alembic environment for Set2Tracks: migrations run on the app's own engine.

No ``fileConfig``: logging stays the app's JSON logging. On PostgreSQL a migration waits at
most 5 s for a lock, so a release blocked by a long transaction fails fast instead of
queueing every query of the live site behind it.
"""

from __future__ import annotations

import logging
from typing import Any

from alembic import context
from flask import current_app

logger = logging.getLogger("alembic.env")
config = context.config
migrate_extension = current_app.extensions["migrate"]
target_metadata = migrate_extension.db.metadata
LOCK_TIMEOUT = "5s"


def _skip_empty_revision(migration_context: Any, revision: Any, directives: list[Any]) -> None:
    """Write no file when autogenerate finds nothing to change."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("no schema change detected")


def run_migrations_offline() -> None:
    """Print the SQL of the migrations instead of running it (``flask db upgrade --sql``)."""
    url = migrate_extension.db.engine.url.render_as_string(hide_password=False)
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    options = dict(migrate_extension.configure_args)
    options.setdefault("process_revision_directives", _skip_empty_revision)
    options.setdefault("compare_type", True)
    with migrate_extension.db.engine.connect() as connection:
        dialect = connection.dialect.name
        if dialect == "postgresql":
            connection.exec_driver_sql(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
            connection.commit()
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        options["render_as_batch"] = dialect == "sqlite"
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            **options,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
