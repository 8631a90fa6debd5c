"""Ids of tracks and library files are never given again once their row is gone.

SQLite gives a table's highest id again after that row is deleted, unless the table is
``AUTOINCREMENT``; PostgreSQL sequences never go back. An old ``/tracks/<id>`` link, a
bookmark or an API client's cache must not show another track, and ``--id`` must not name
another library file.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, literal_column, select, table, text

from set2tracks import create_app
from set2tracks.extensions import db
from set2tracks.fingerprint.models import LibraryFile
from tests.backends import Backends
from tests.conftest import base_config
from tests.factories import LibraryFileFactory, TrackFactory

TABLES = ("library_files", "tracks")
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def test_a_deleted_tracks_link_never_shows_a_later_track(client: FlaskClient) -> None:
    TrackFactory(title="Older")
    newest = TrackFactory(title="Deleted Dub")
    gone_id = newest.id
    db.session.delete(newest)
    db.session.flush()

    later = TrackFactory(title="Later Anthem")

    assert later.id > gone_id
    page = client.get(f"/tracks/{gone_id}")
    api = client.get(f"/api/v1/tracks/{gone_id}")
    assert page.status_code == 404
    assert "Later Anthem" not in page.text
    assert api.status_code == 404
    assert client.get(f"/tracks/{later.id}").status_code == 200


def test_a_removed_library_files_id_never_names_a_later_file(app: Flask) -> None:
    LibraryFileFactory(path="/music/older.flac")
    newest = LibraryFileFactory(path="/music/removed.flac")
    gone_id = newest.id
    runner = app.test_cli_runner()
    removed = runner.invoke(args=["library", "remove", "--id", str(gone_id)])

    later = LibraryFileFactory(path="/music/later.flac")
    again = runner.invoke(args=["library", "remove", "--id", str(gone_id)])

    assert removed.exit_code == 0, removed.output
    assert later.id > gone_id
    # The old id names nothing: the operator's second remove must not delete the new file.
    assert again.exit_code == 1
    assert f"not in the library: --id {gone_id}" in again.output
    assert db.session.get(LibraryFile, later.id) is not None


# The migration that makes SQLite's ids AUTOINCREMENT, on a database holding data.

AUTOINCREMENT = "e5d1a7c40b93"
BEFORE_AUTOINCREMENT = "c3e8f19a7d42"
NOW = "2026-11-01 12:00:00"
# Every table that references tracks or library files has rows pointing at them: a table
# rebuilt with foreign keys on would cascade its DROP into them.
SEED = [
    "INSERT INTO users (id, email, password_hash, display_name, is_admin, is_premium,"
    " is_disabled, session_token, created_at, updated_at) VALUES"
    " (1, 'dj@example.com', 'x', 'DJ', false, false, false, 'token', :now, :now)",
    "INSERT INTO channels (id, youtube_channel_id, name, is_followed, is_hidden, set_count,"
    " created_at, updated_at) VALUES (1, 'UC1', 'Boiler Room', false, false, 1, :now, :now)",
    "INSERT INTO sets (id, source, video_id, channel_id, title, duration_seconds,"
    " is_embeddable, chapters, track_count, coverage, is_published, is_hidden,"
    " submitted_by_id, search_document, created_at, updated_at) VALUES"
    " (1, 'youtube', 'vid00000001', 1, 'Sunrise', 3600, true, '[]', 3, 0.5, true, false, 1,"
    " 'sunrise', :now, :now)",
    "INSERT INTO browsing_history (user_id, set_id, last_viewed_at) VALUES (1, 1, :now)",
    "INSERT INTO labels (id, name, track_count) VALUES (1, 'Ninja Tune', 2)",
    "INSERT INTO genres (id, name) VALUES (1, 'House'), (2, 'Techno')",
    "INSERT INTO library_files (id, path, content_hash, size_bytes, fingerprint_count,"
    " segment, created_at, updated_at) VALUES"
    " (1, '/music/a.flac', 'h1', 10, 5, 'seg-1', :now, :now),"
    " (2, '/music/b.flac', 'h2', 20, 6, 'seg-1', :now, :now),"
    " (4, '/music/d.flac', 'h4', 40, 7, NULL, :now, :now)",
    "INSERT INTO tracks (id, title, artist, label_id, library_file_id, shazam_key, is_public,"
    " set_count, search_document, created_at, updated_at) VALUES"
    " (1, 'Glue', 'Bicep', 1, NULL, '101', true, 1, 'glue', :now, :now),"
    " (2, 'Promo', 'Unknown', NULL, 1, NULL, false, 1, 'promo', :now, :now),"
    " (3, 'Atlas', 'Four Tet', 1, 2, '103', true, 0, 'atlas', :now, :now),"
    " (7, 'Newest', 'Floating Points', NULL, 4, '107', true, 1, 'newest', :now, :now)",
    "INSERT INTO track_genres (track_id, genre_id) VALUES (1, 1), (2, 2), (3, 1), (7, 2)",
    "INSERT INTO related_tracks (track_id, related_track_id, position) VALUES"
    " (1, 7, 0), (1, 3, 1), (7, 1, 0), (3, 2, 0)",
    "INSERT INTO set_tracks (id, set_id, position, track_id, start_seconds, end_seconds,"
    " confidence, found_by) VALUES (1, 1, 0, 1, 0, 300, 0.9, 'shazam'),"
    " (2, 1, 1, 7, 300, 600, 0.8, 'library'), (3, 1, 2, NULL, 600, 900, NULL, NULL)",
]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def scratch(request: pytest.FixtureRequest, backends: Backends, tmp_path: Path) -> Iterator[Flask]:
    """An app on an empty database of its own: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'scratch.db'}"
        yield create_app(base_config(backends, tmp_path, SQLALCHEMY_DATABASE_URI=url))
        return
    server = create_engine(backends.database_url, isolation_level="AUTOCOMMIT")
    # Named after this run's test database: helpers on other databases never collide.
    name = f"{server.url.database}_ids_scratch"
    drop = text(f'DROP DATABASE IF EXISTS "{name}"')
    with server.connect() as connection:
        connection.execute(drop)
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.url.set(database=name).render_as_string(hide_password=False)
    scratch_app = create_app(base_config(backends, tmp_path, SQLALCHEMY_DATABASE_URI=url))
    try:
        yield scratch_app
    finally:
        with scratch_app.app_context():
            db.engine.dispose()
        with server.connect() as connection:
            connection.execute(drop)
        server.dispose()


def table_rows() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    with db.engine.connect() as connection:
        names = [n for n in inspect(connection).get_table_names() if n != "alembic_version"]
        return {
            name: sorted(
                (
                    tuple(row)
                    for row in connection.execute(
                        select(literal_column("*")).select_from(table(name))
                    )
                ),
                key=repr,
            )
            for name in names
            if name != "sqlite_sequence"
        }


def schema() -> dict[str, Any]:
    """Columns, keys, constraints and every index as the database itself lists them."""
    with db.engine.connect() as connection:
        found = inspect(connection)
        described: dict[str, Any] = {}
        for name in found.get_table_names():
            described[name] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], c["default"])
                    for c in found.get_columns(name)
                ],
                # The primary key's name is not kept: SQLite writes an AUTOINCREMENT key inline.
                "primary key": found.get_pk_constraint(name)["constrained_columns"],
                "foreign keys": sorted(map(repr, found.get_foreign_keys(name))),
                "unique": sorted(map(repr, found.get_unique_constraints(name))),
                "checks": sorted(map(repr, found.get_check_constraints(name))),
            }
        if connection.dialect.name == "sqlite":
            # Expression and partial indexes too, which reflection skips.
            indexes = connection.execute(
                text("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'")
            )
        else:
            indexes = connection.execute(
                text(
                    "SELECT indexname, tablename, indexdef FROM pg_indexes"
                    " WHERE schemaname = 'public'"
                )
            )
        described["indexes"] = sorted(map(tuple, indexes), key=repr)
    return described


def create_table_sql(table: str) -> str:
    with db.engine.connect() as connection:
        sql = connection.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :table"),
            {"table": table},
        ).scalar_one()
    return str(sql)


def test_the_autoincrement_migration_keeps_every_row_index_and_reference(
    scratch: Flask,
) -> None:
    with scratch.app_context():
        upgrade(revision=BEFORE_AUTOINCREMENT)
        with db.engine.begin() as connection:
            for statement in SEED:
                connection.execute(text(statement), {"now": NOW})
        rows, structure = table_rows(), schema()

        upgrade(revision=AUTOINCREMENT)  # later migrations may add columns
        upgraded_rows, upgraded = table_rows(), schema()
        sqlite = db.engine.dialect.name == "sqlite"
        if sqlite:
            autoincrement = {t: "AUTOINCREMENT" in create_table_sql(t) for t in TABLES}
            with db.engine.connect() as connection:
                sequence = dict(connection.execute(text("SELECT * FROM sqlite_sequence")).all())
                foreign_keys = connection.execute(text("PRAGMA foreign_keys")).scalar_one()
                dangling = connection.execute(text("PRAGMA foreign_key_check")).all()
        downgrade(revision=BEFORE_AUTOINCREMENT)
        downgraded_rows, downgraded = table_rows(), schema()
        upgrade(revision=AUTOINCREMENT)  # later migrations may add columns
        again_rows = table_rows()
        db.engine.dispose()

    assert all(rows[name] for name in ("track_genres", "related_tracks", "set_tracks"))
    assert upgraded_rows == rows
    assert downgraded_rows == rows
    assert again_rows == rows
    assert upgraded == structure
    assert downgraded == structure
    if sqlite:
        assert autoincrement == {"library_files": True, "tracks": True}
        # The next ids come after the highest ones the tables hold.
        assert sequence == {"library_files": 4, "tracks": 7}
        # The app's pooled connection enforces foreign keys again after migrating.
        assert foreign_keys == 1
        assert dangling == []


BREAKING_REVISION = '''"""A migration that deletes a genre its tracks still point at."""

from alembic import op

revision = "b0b0b0b0b0b0"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM genres WHERE name = 'House'")


def downgrade() -> None:
    pass
'''


def test_a_sqlite_migration_that_leaves_a_dangling_reference_is_rolled_back(
    backends: Backends, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Migrations run with SQLite's foreign keys off: the check after each one is the guard."""
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory, ignore=shutil.ignore_patterns("__pycache__"))
    url = f"sqlite:///{tmp_path / 'scratch.db'}"
    scratch = create_app(base_config(backends, tmp_path, SQLALCHEMY_DATABASE_URI=url))
    with scratch.app_context():
        upgrade(directory=str(directory))
        head = current_revision()
        with db.engine.begin() as connection:
            for statement in SEED:
                connection.execute(text(statement), {"now": NOW})
        revision = BREAKING_REVISION.replace("{head}", head)
        (directory / "versions" / "20261201_b0b0b0b0b0b0_breaking.py").write_text(revision)

        with pytest.raises(SystemExit):  # Flask-Migrate logs the error and exits
            upgrade(directory=str(directory))
        with db.engine.connect() as connection:
            genres = connection.execute(text("SELECT name FROM genres ORDER BY name")).all()
            foreign_keys = connection.execute(text("PRAGMA foreign_keys")).scalar_one()
        version = current_revision()
        db.engine.dispose()

    assert "left 2 row(s) with a dangling reference (track_genres -> genres)" in caplog.text
    assert genres == [("House",), ("Techno",)]
    assert version == head
    assert foreign_keys == 1


def current_revision() -> str:
    """The revision the database is at."""
    with db.engine.connect() as connection:
        return str(connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one())
