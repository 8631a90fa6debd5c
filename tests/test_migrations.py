"""The schema comes from migrations only, and the migrations match the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text

from set2tracks import create_app
from set2tracks.extensions import db
from tests.backends import Backends
from tests.conftest import base_config

DOMAIN_TABLES = {
    "users",
    "user_preferences",
    "invites",
    "api_tokens",
    "channels",
    "sets",
    "set_tracks",
    "submissions",
    "submission_attempts",
    "browsing_history",
    "tracks",
    "labels",
    "genres",
    "track_genres",
    "related_tracks",
    "library_files",
    "fingerprint_segments",
}


def test_migrated_database_has_every_table_of_the_domain_model(app: Flask) -> None:
    tables = set(inspect(db.engine).get_table_names())

    assert set(db.metadata.tables) == DOMAIN_TABLES
    assert tables >= DOMAIN_TABLES
    assert "alembic_version" in tables


@pytest.mark.postgres
def test_models_and_migrations_agree_on_postgresql(app: Flask) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)

    assert differences == []


@pytest.mark.postgres
def test_full_text_indexes_exist_on_postgresql(app: Flask) -> None:
    with db.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE '%search'")
        ).all()

    definitions = dict(rows)
    assert set(definitions) == {"ix_sets_search", "ix_tracks_search"}
    assert all("USING gin" in definition for definition in definitions.values())
    assert all("to_tsvector" in definition for definition in definitions.values())


def _round_trip(scratch: Flask) -> None:
    """upgrade -> downgrade to nothing -> upgrade, then compare with the models."""
    with scratch.app_context():
        upgrade()
        assert set(inspect(db.engine).get_table_names()) >= DOMAIN_TABLES
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        assert set(inspect(db.engine).get_table_names()) >= DOMAIN_TABLES
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect() as connection:
                assert compare_metadata(MigrationContext.configure(connection), db.metadata) == []
        db.engine.dispose()


def test_migrations_round_trip_on_an_empty_database(backends: Backends, tmp_path: Path) -> None:
    """upgrade -> downgrade to nothing -> upgrade again, on a scratch SQLite file."""
    url = f"sqlite:///{tmp_path / 'scratch.db'}"
    _round_trip(create_app(base_config(backends, tmp_path, SQLALCHEMY_DATABASE_URI=url)))


@pytest.mark.postgres
def test_migrations_round_trip_on_an_empty_postgresql_database(
    backends: Backends, tmp_path: Path
) -> None:
    server = create_engine(backends.database_url, isolation_level="AUTOCOMMIT")
    scratch_url = server.url.set(database="set2tracks_test_scratch")
    with server.connect() as connection:
        connection.execute(text("DROP DATABASE IF EXISTS set2tracks_test_scratch"))
        connection.execute(text("CREATE DATABASE set2tracks_test_scratch"))
    try:
        _round_trip(
            create_app(
                base_config(
                    backends,
                    tmp_path,
                    SQLALCHEMY_DATABASE_URI=scratch_url.render_as_string(hide_password=False),
                )
            )
        )
    finally:
        with server.connect() as connection:
            connection.execute(text("DROP DATABASE IF EXISTS set2tracks_test_scratch"))
        server.dispose()


def test_no_code_creates_tables_outside_migrations() -> None:
    root = Path(__file__).resolve().parent.parent / "set2tracks"
    offenders = [str(path) for path in root.rglob("*.py") if "create_all(" in path.read_text()]

    assert offenders == []
