"""Find the database and Redis the test session runs against."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from set2tracks.extensions import db

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/set2tracks_test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
FORCE_SQLITE = "sqlite"
REDIS_OFF = "off"


@dataclass
class Backends:
    database_url: str
    postgres: bool
    postgres_reason: str
    redis_url: str | None
    redis_reason: str

    def reset_database(self) -> None:
        """Empty the test database before migrating it (PostgreSQL keeps it between runs)."""
        if self.postgres:
            with db.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))


def _postgres_url(raw: str) -> URL:
    url = make_url(raw)
    if url.get_backend_name() in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def _ensure_postgres(url: URL) -> str | None:
    """Create the test database if missing; return why PostgreSQL is unusable, or None."""
    if "test" not in (url.database or ""):
        return f"refusing {url.database!r}: the test database name must contain 'test'"
    options = {"connect_timeout": 2}
    try:
        engine = create_engine(url, connect_args=options)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except SQLAlchemyError as error:
        if "does not exist" not in str(error):
            return f"cannot connect to {url.render_as_string(hide_password=True)}"
    admin = create_engine(
        url.set(database="postgres"), isolation_level="AUTOCOMMIT", connect_args=options
    )
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{url.database}"'))
    except SQLAlchemyError:
        return f"cannot create the database {url.database!r}"
    finally:
        admin.dispose()
    return None


def _redis_problem(url: str) -> str | None:
    try:
        client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        client.close()
    except RedisError:
        return f"no Redis answers at {url}"
    return None


def resolve_backends(sqlite_path: Path) -> Backends:
    """Pick PostgreSQL and Redis when asked for or when the local defaults answer."""
    sqlite_url = f"sqlite:///{sqlite_path}"
    wanted_db = os.environ.get("TEST_DATABASE_URL", "").strip()
    if wanted_db.lower().startswith(FORCE_SQLITE):
        database_url, postgres, postgres_reason = sqlite_url, False, "TEST_DATABASE_URL=sqlite"
    else:
        url = _postgres_url(wanted_db or DEFAULT_POSTGRES)
        problem = _ensure_postgres(url)
        if problem and wanted_db:
            raise RuntimeError(f"TEST_DATABASE_URL is set but unusable: {problem}")
        if problem:
            database_url, postgres = sqlite_url, False
            postgres_reason = f"{problem} (set TEST_DATABASE_URL to use another server)"
        else:
            database_url, postgres = url.render_as_string(hide_password=False), True
            postgres_reason = ""

    wanted_redis = os.environ.get("TEST_REDIS_URL", "").strip()
    redis_url: str | None
    if wanted_redis.lower() == REDIS_OFF:
        redis_url, redis_reason = None, "TEST_REDIS_URL=off"
    else:
        candidate = wanted_redis or DEFAULT_REDIS
        problem = _redis_problem(candidate)
        if problem and wanted_redis:
            raise RuntimeError(f"TEST_REDIS_URL is set but unusable: {problem}")
        redis_url = None if problem else candidate
        redis_reason = f"{problem} (set TEST_REDIS_URL to use another server)" if problem else ""
    return Backends(database_url, postgres, postgres_reason, redis_url, redis_reason)
