"""Alembic environment for Set2Tracks: migrations run on the app's own engine.

No ``fileConfig``: logging stays the app's JSON logging. On PostgreSQL a migration waits at
most 5 s for a lock, so a release blocked by a long transaction fails fast instead of
queueing every query of the live site behind it.

On SQLite a batch migration rebuilds a table: it copies it, drops the old one and renames
the copy. With foreign keys on (the app turns them on for every connection) that DROP runs
ON DELETE CASCADE / SET NULL on every table referencing it and silently empties or unlinks
them. So migrations run with foreign keys off, as SQLite's own table-rebuild procedure
says, and each migration ends with ``PRAGMA foreign_key_check`` inside its transaction: a
migration that leaves a dangling reference is rolled back instead of committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext
from flask import current_app
from sqlalchemy import Connection

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


def _foreign_key_violations(connection: Connection) -> set[tuple[Any, ...]]:
    """Return (table, rowid, referenced table) of every row whose reference dangles."""
    rows = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    return {(row[0], row[1], row[2]) for row in rows}


@contextmanager
def _sqlite_foreign_keys_off(connection: Connection) -> Iterator[set[tuple[Any, ...]]]:
    """Turn SQLite's foreign keys off on ``connection`` while migrating, and on again after.

    Yields the violations already there (a row edited by hand with the sqlite3 shell,
    where foreign keys are off by default): only new ones fail a migration.
    """
    # The pragma is silently ignored inside a transaction: set it on the driver's
    # connection, before SQLAlchemy's first BEGIN, and prove it took effect.
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA foreign_keys=OFF")
    if driver.execute("PRAGMA foreign_keys").fetchone() != (0,):
        raise RuntimeError("cannot turn SQLite foreign keys off: a transaction is open")
    try:
        yield _foreign_key_violations(connection)
        connection.commit()
    finally:
        connection.rollback()
        driver.execute("PRAGMA foreign_keys=ON")
        if driver.execute("PRAGMA foreign_keys").fetchone() != (1,):
            # Never hand the app a pooled connection that ignores its foreign keys.
            connection.invalidate()


def _check_foreign_keys(known: set[tuple[Any, ...]]) -> Callable[..., None]:
    """Return an ``on_version_apply`` hook failing a migration that breaks a reference."""

    def check(ctx: MigrationContext, **_: Any) -> None:
        assert ctx.connection is not None
        broken = _foreign_key_violations(ctx.connection) - known
        if broken:
            tables = ", ".join(sorted({f"{table} -> {parent}" for table, _, parent in broken}))
            raise RuntimeError(
                f"the migration left {len(broken)} row(s) with a dangling reference ({tables})"
            )

    return check


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
        if dialect != "sqlite":
            _run(connection, options)
            return
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        options["render_as_batch"] = True
        with _sqlite_foreign_keys_off(connection) as known:
            options["on_version_apply"] = _check_foreign_keys(known)
            _run(connection, options)


def _run(connection: Connection, options: dict[str, Any]) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, **options)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
