"""Test fixtures: one app and one migrated database per session, one transaction per test.

Backends: PostgreSQL and Redis when ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` name them or
the local defaults answer; otherwise SQLite, with the tests marked ``postgres`` / ``redis``
skipped and the reason printed. ``TEST_DATABASE_URL=sqlite`` and ``TEST_REDIS_URL=off``
force the embedded pass.
"""

from __future__ import annotations

import contextvars
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, current_app
from flask.testing import FlaskClient
from flask_migrate import upgrade
from redis import Redis
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, scoped_session
from werkzeug.test import TestResponse

from set2tracks import create_app
from set2tracks.extensions import db
from set2tracks.fingerprint.audio import AudioError, resolve_ffmpeg
from tests.backends import Backends, resolve_backends

TEST_SECRET_KEY = "test-secret-key-0123456789abcdefghijklmnop"


BACKENDS = pytest.StashKey[Backends]()


class IsolatedClient(FlaskClient):
    """A test client whose requests each get their own app context, as in production.

    pytest-flask keeps an app context pushed during each test; Flask would reuse it for
    every request, sharing ``g`` (the signed-in user, the request id) between requests.
    """

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        # Buffered: the request's contexts are popped inside the fresh Context they live in.
        kwargs.setdefault("buffered", True)
        response: TestResponse = contextvars.Context().run(super().open, *args, **kwargs)
        return response


Flask.test_client_class = IsolatedClient


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "committing: the test commits for real (other processes read it)"
    )
    config.stash[BACKENDS] = resolve_backends(Path(tempfile.mkdtemp(prefix="s2t-")) / "test.db")


def _ffmpeg_header() -> str:
    try:
        ffmpeg = resolve_ffmpeg()
    except AudioError as error:
        return f"ffmpeg: none ({error})"
    return f"ffmpeg: {ffmpeg.path} ({'bundled' if ffmpeg.bundled else 'system'})"


def pytest_report_header(config: pytest.Config) -> list[str]:
    found = config.stash[BACKENDS]
    return [
        _ffmpeg_header(),
        f"database: {make_url(found.database_url).render_as_string(hide_password=True)}"
        + ("" if found.postgres else f" (PostgreSQL tests skipped: {found.postgres_reason})"),
        f"redis: {found.redis_url or 'none (Redis tests skipped: ' + found.redis_reason + ')'}",
    ]


@pytest.fixture(scope="session")
def backends(request: pytest.FixtureRequest) -> Backends:
    return request.config.stash[BACKENDS]


@pytest.fixture(autouse=True)
def _require_backends(request: pytest.FixtureRequest, backends: Backends) -> None:
    if request.node.get_closest_marker("postgres") and not backends.postgres:
        pytest.skip(f"needs PostgreSQL: {backends.postgres_reason}")
    if request.node.get_closest_marker("redis") and not backends.redis_url:
        pytest.skip(f"needs Redis: {backends.redis_reason}")


def base_config(backends: Backends, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """Return a test configuration mapping for ``create_app``."""
    config: dict[str, Any] = {
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": backends.database_url,
        "SESSION_FILE_DIR": str(tmp_path / "sessions"),
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "FINGERPRINT_DIR": str(tmp_path / "fingerprints"),
        "RATELIMIT_ENABLED": False,
        "INLINE_JOBS_THREADED": False,
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def app(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    application = create_app(
        base_config(backends, tmp_path_factory.mktemp("app"), MAIL_BACKEND="memory")
    )
    with application.app_context():
        backends.reset_database()
        upgrade()
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """The session app's test client (not in ``with`` mode: no context outlives a request)."""
    return app.test_client()


@pytest.fixture(autouse=True)
def _isolate_database(request: pytest.FixtureRequest, app: Flask) -> Iterator[None]:
    """Run the test inside a transaction that is rolled back at its end.

    The app's code may commit and roll back freely: its session joins the outer
    transaction through savepoints. Tests marked ``committing`` write for real and the
    tables are emptied afterwards.
    """
    if request.node.get_closest_marker("committing"):
        yield
        with app.app_context():
            truncate_all_tables()
        return
    with app.app_context():
        connection = db.engine.connect()
    transaction = connection.begin()
    original_session = db.session
    database_uri = app.config["SQLALCHEMY_DATABASE_URI"]

    def make_session() -> Session:
        # Every app on the test database joins the test transaction, including apps a test
        # builds with other settings; apps on another database get their usual sessions.
        if current_app.config["SQLALCHEMY_DATABASE_URI"] == database_uri:
            return Session(bind=connection, join_transaction_mode="create_savepoint")
        return original_session.session_factory()

    db.session = scoped_session(make_session, scopefunc=original_session.registry.scopefunc)
    try:
        yield
    finally:
        db.session.remove()
        db.session = original_session
        transaction.rollback()
        connection.close()


def truncate_all_tables() -> None:
    with db.engine.begin() as connection:
        for table in reversed(db.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture
def redis_url(backends: Backends) -> Iterator[str]:
    """A Redis database emptied before and after the test."""
    assert backends.redis_url
    client = Redis.from_url(backends.redis_url)
    client.flushdb()
    yield backends.redis_url
    client.flushdb()
    client.close()
