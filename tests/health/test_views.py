"""Health endpoints: liveness touches nothing, readiness checks what the app needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from set2tracks import create_app
from set2tracks.health import checks
from tests.auth.helpers import sign_in
from tests.backends import Backends
from tests.conftest import base_config
from tests.factories import UserFactory

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


HEALTH_TOKEN = "health-token-0123456789abcdef-0123456789"
MONITOR = {"Authorization": f"Bearer {HEALTH_TOKEN}"}


@pytest.fixture
def monitored_app(app: Flask, backends: Backends, tmp_path: Path) -> Flask:
    """An app whose /health a monitor reads with HEALTH_TOKEN."""
    return create_app(base_config(backends, tmp_path, HEALTH_TOKEN=HEALTH_TOKEN))


def test_health_reports_version_profile_and_job_runner(monitored_app: Flask) -> None:
    body = monitored_app.test_client().get("/health", headers=MONITOR).json

    assert body["status"] == "ok"
    assert body["profile"] == "embedded"
    assert body["version"]
    assert body["checks"]["jobs"] == {"ok": True, "runner": "in-process"}


@pytest.mark.redis
def test_health_reports_redis_queues_and_workers(
    backends: Backends, tmp_path: Path, redis_url: str
) -> None:
    app = create_app(
        base_config(
            backends, tmp_path, REDIS_URL=redis_url, JOB_RUNNER="rq", HEALTH_TOKEN=HEALTH_TOKEN
        )
    )

    body = app.test_client().get("/health", headers=MONITOR).json

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


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-0123456789abcdef-0123456789"}],
    ids=["anonymous", "wrong-token"],
)
def test_health_details_are_refused_without_the_token(
    monitored_app: Flask, headers: dict[str, str]
) -> None:
    response = monitored_app.test_client().get("/health", headers=headers)

    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "version" not in response.json
    assert "uptime" not in response.get_data(as_text=True)


def test_health_details_are_for_admins_among_signed_in_people(monitored_app: Flask) -> None:
    member = monitored_app.test_client()
    sign_in(member, UserFactory())
    admin = monitored_app.test_client()
    sign_in(admin, UserFactory(is_admin=True))

    refused = member.get("/health")
    allowed = admin.get("/health")

    assert refused.status_code == 403
    assert "version" not in refused.json
    assert allowed.status_code == 200
    assert allowed.json["version"]


def test_readyz_reads_the_migration_scripts_once(
    backends: Backends, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = []
    from_config = checks.ScriptDirectory.from_config

    def counting(*args: Any, **kwargs: Any) -> Any:
        reads.append(args)
        return from_config(*args, **kwargs)

    monkeypatch.setattr(checks.ScriptDirectory, "from_config", counting)
    client = create_app(base_config(backends, tmp_path)).test_client()

    statuses = [client.get("/readyz").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert len(reads) == 1


def test_only_the_probes_skip_the_https_redirect(
    app: Flask, backends: Backends, tmp_path: Path
) -> None:
    forcing = create_app(
        base_config(backends, tmp_path, FORCE_HTTPS=True, HEALTH_TOKEN=HEALTH_TOKEN)
    )
    client = forcing.test_client()

    cleartext = client.get("/health", headers=MONITOR)
    secure = client.get("/health", headers=MONITOR, base_url="https://localhost")

    # The monitor's token must not be answered over plain HTTP: it is sent to HTTPS instead.
    assert cleartext.status_code == 302
    assert cleartext.headers["Location"] == "https://localhost/health"
    assert "version" not in cleartext.get_data(as_text=True)
    assert secure.status_code == 200
    assert secure.json["version"]
    # Load balancers keep probing over plain HTTP.
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
