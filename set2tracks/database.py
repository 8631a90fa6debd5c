"""Declarative base, column types and helpers shared by every model."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Dialect,
    Engine,
    Index,
    MetaData,
    event,
    func,
    literal_column,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 'simple' keeps artist and label names as typed (no English stemming of "Solomun").
SEARCH_CONFIG = "simple"


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on every database.

    PostgreSQL stores ``timestamptz``; SQLite stores text without an offset, so values are
    normalised to UTC on the way in and tagged as UTC on the way out. Naive datetimes are
    refused: they are the bug this type exists to prevent.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime()},
    )


class TimestampMixin:
    """``created_at`` / ``updated_at`` columns, set by the application in UTC."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def search_vector(column: Any) -> ColumnElement[Any]:
    """Return the PostgreSQL ``tsvector`` expression the search indexes are built on."""
    # Literal SQL, not bound parameters: the planner uses the GIN index only when the
    # query's expression is exactly the indexed one.
    return func.to_tsvector(search_config(), func.coalesce(column, literal_column("''")))


def search_config() -> ColumnElement[Any]:
    """Return the text-search configuration as a SQL literal."""
    return literal_column(f"'{SEARCH_CONFIG}'::regconfig")


def search_index(name: str, column_name: str) -> Index:
    """Return a GIN index on the search vector of ``column_name``, created on PostgreSQL only.

    Written as SQL text because an index whose expression starts with a literal cannot find
    its table by itself: put it in the model's ``__table_args__``.
    """
    expression = f"to_tsvector('{SEARCH_CONFIG}'::regconfig, coalesce({column_name}, ''))"
    index = Index(name, text(expression), postgresql_using="gin")
    return index.ddl_if(dialect="postgresql")


def escape_like(term: str) -> str:
    """Escape LIKE wildcards so a user's ``%`` or ``_`` matches itself (use ``escape='\\'``)."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # pysqlite's own transaction handling breaks SAVEPOINT; SQLAlchemy emits BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; WAL lets the in-process job thread write
    # while pages read; the busy timeout waits for a writer instead of failing at once.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN")


def enable_sqlite_pragmas() -> None:
    """Give every SQLite connection foreign keys, WAL, a busy timeout and real transactions."""
    if not event.contains(Engine, "connect", _sqlite_pragmas):
        event.listen(Engine, "connect", _sqlite_pragmas)
        event.listen(Engine, "begin", _sqlite_begin)
