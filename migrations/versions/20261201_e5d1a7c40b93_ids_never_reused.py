"""Ids of tracks and library files are never given again on SQLite (AUTOINCREMENT).

SQLite gives the highest id again once its row is deleted: an old /tracks/<id> link, a
bookmark or an API client's cache then shows another track, and ``--id`` names another
library file. ``AUTOINCREMENT`` keeps the highest id ever given in ``sqlite_sequence``;
SQLite can only add it by rebuilding the table, with every row keeping its id. env.py runs
SQLite migrations with foreign keys off, so dropping the old table cascades nowhere.
PostgreSQL sequences never go back: nothing to do there.

A later batch rebuild of these tables must pass the same ``table_kwargs``: reflection does
not carry AUTOINCREMENT over.

Revision: e5d1a7c40b93
Parent: c3e8f19a7d42
Created: 2026-12-01 04:10:00
"""

from alembic import op

revision = "e5d1a7c40b93"
down_revision = "c3e8f19a7d42"
branch_labels = None
depends_on = None

TABLES = ("library_files", "tracks")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)
