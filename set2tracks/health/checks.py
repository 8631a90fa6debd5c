"""Dependency checks behind ``/readyz`` and ``/health``."""

from __future__ import annotations

import logging
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from redis.exceptions import RedisError
from rq import Worker
from sqlalchemy.exc import SQLAlchemyError

from set2tracks.extensions import db, migrate, redis_client
from set2tracks.queues import QUEUE_NAMES, SERIALIZER, rq_queue

logger = logging.getLogger(__name__)


HEADS_KEY = "s2t_migration_heads"


def migration_heads(app: Flask) -> frozenset[str]:
    """Return the heads of the migration scripts, read once per app (they ship with the code)."""
    heads: frozenset[str] | None = app.extensions.get(HEADS_KEY)
    if heads is None:
        script = ScriptDirectory.from_config(migrate.get_config())
        heads = app.extensions[HEADS_KEY] = frozenset(script.get_heads())
    return heads


def _database(app: Flask) -> dict[str, Any]:
    heads = migration_heads(app)
    try:
        with db.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as error:
        logger.warning("readiness: database unreachable (%s)", type(error).__name__)
        return {"ok": False, "error": "database unreachable"}
    if current != heads:
        return {"ok": False, "error": "migrations not at head: run `flask db upgrade`"}
    return {"ok": True}


def _redis(app: Flask, details: bool) -> dict[str, Any]:
    client = redis_client(app)
    try:
        client.ping()
        result: dict[str, Any] = {"ok": True}
        if details:
            result["queues"] = {name: rq_queue(name, client).count for name in QUEUE_NAMES}
            result["workers"] = len(Worker.all(connection=client, serializer=SERIALIZER))
        return result
    except RedisError as error:
        logger.warning("readiness: redis unreachable (%s)", type(error).__name__)
        return {"ok": False, "error": "redis unreachable"}


def run_checks(app: Flask, *, details: bool = False) -> dict[str, dict[str, Any]]:
    """Check the database (reachable, migrated to head) and, in production, Redis."""
    checks = {"database": _database(app)}
    if app.config.get("REDIS_URL"):
        checks["redis"] = _redis(app, details)
    elif details:
        runner = app.extensions.get("s2t_inline_runner")
        checks["jobs"] = {"ok": runner is not None, "runner": "in-process"}
    return checks
