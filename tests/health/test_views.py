"""Health endpoints: liveness touches nothing, readiness checks what the app needs."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from set2tracks import create_app
from tests.backends import Backends
from tests.conftest import base_config

UNREACHABLE_DATABASE = "postgresql+psycopg://nobody@127.0.0.1:1/set2tracks_test"


@pytest.fixture
def broken_app(backends: Backends, tmp_path: Path) -> Flask:
    return create_app(base_config(backends, tmp_path, SQLALCHEMY_DATABASE_URI=UNREACHABLE_DATABASE))


def test_healthz_answers_without_touching_any_dependency(broken_app: Flask) -> None:
    response = broken_app.test_client().get("/healthz")

    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_is_ready_when_the_database_is_migrated(client: FlaskClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json["checks"]["database"] == {"ok": True}


def test_readyz_is_503_when_the_database_is_unreachable(broken_app: Flask) -> None:
    response = broken_app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.json["checks"]["database"] == {"ok": False, "error": "database unreachable"}


def test_readyz_is_503_when_migrations_are_behind(backends: Backends, tmp_path: Path) -> None:
    empty = create_app(
        base_config(backends, tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/empty.db")
    )

    response = empty.test_client().get("/readyz")

    assert response.status_code == 503
    assert "flask db upgrade" in response.json["checks"]["database"]["error"]


def test_health_reports_version_profile_and_job_runner(client: FlaskClient) -> None:
    body = client.get("/health").json

    assert body["status"] == "ok"
    assert body["profile"] == "embedded"
    assert body["version"]
    assert body["checks"]["jobs"] == {"ok": True, "runner": "in-process"}


@pytest.mark.redis
def test_health_reports_redis_queues_and_workers(
    backends: Backends, tmp_path: Path, redis_url: str
) -> None:
    app = create_app(base_config(backends, tmp_path, REDIS_URL=redis_url, JOB_RUNNER="rq"))

    body = app.test_client().get("/health").json

    assert body["checks"]["redis"] == {
        "ok": True,
        "queues": {"high": 0, "default": 0, "low": 0},
        "workers": 0,
    }


def test_readyz_is_503_when_redis_is_unreachable(backends: Backends, tmp_path: Path) -> None:
    app = create_app(
        base_config(backends, tmp_path, REDIS_URL="redis://127.0.0.1:1/0", JOB_RUNNER="rq")
    )

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.json["checks"]["redis"] == {"ok": False, "error": "redis unreachable"}
