"""The application factory."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from set2tracks import create_app
from tests.backends import Backends
from tests.conftest import base_config


def test_every_blueprint_is_registered(app: Flask) -> None:
    assert {"auth", "sets", "tracks", "health", "docs", "sets_api", "tracks_api"} <= set(
        app.blueprints
    )
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert {
        "/healthz",
        "/readyz",
        "/health",
        "/api/v1/openapi.json",
        "/api/v1/sets",
        "/api/docs",
    } <= rules


def test_openapi_document_lists_the_api(client: object) -> None:
    document = client.get("/api/v1/openapi.json").json  # type: ignore[attr-defined]

    assert document["info"]["title"] == "Set2Tracks API"
    assert {"/api/v1/sets", "/api/v1/sets/{set_id}", "/api/v1/tracks"} <= set(document["paths"])


def test_client_address_comes_from_the_trusted_proxy_hop(
    backends: Backends, tmp_path: Path
) -> None:
    app = create_app(base_config(backends, tmp_path, PROXY_FIX_X_FOR=1, PROXY_FIX_X_PROTO=1))
    seen: dict[str, str] = {}

    @app.get("/whoami")
    def whoami() -> str:
        from flask import request

        seen["ip"] = str(request.remote_addr)
        seen["scheme"] = request.scheme
        return ""

    app.test_client().get(
        "/whoami",
        headers={"X-Forwarded-For": "10.9.9.9, 203.0.113.7", "X-Forwarded-Proto": "https"},
    )

    assert seen == {"ip": "203.0.113.7", "scheme": "https"}


def test_security_headers_on_pages(client: object) -> None:
    response = client.get("/sets")  # type: ignore[attr-defined]

    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "object-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_https_is_forced_except_on_health_probes(backends: Backends, tmp_path: Path) -> None:
    app = create_app(base_config(backends, tmp_path, FORCE_HTTPS=True))
    client = app.test_client()

    page = client.get("/sets")
    probe = client.get("/healthz")
    secure = client.get("/sets", base_url="https://localhost")

    assert page.status_code == 302
    assert page.headers["Location"].startswith("https://")
    assert probe.status_code == 200
    assert "Strict-Transport-Security" not in probe.headers
    assert secure.status_code == 200
    hsts = secure.headers["Strict-Transport-Security"]
    max_age = int(hsts.split("max-age=")[1].split(";")[0])
    assert max_age >= 365 * 24 * 3600
    assert "includeSubDomains" in hsts


def test_an_app_forcing_https_leaves_other_apps_unredirected(
    client: FlaskClient, backends: Backends, tmp_path: Path
) -> None:
    forcing = create_app(base_config(backends, tmp_path, FORCE_HTTPS=True)).test_client()
    earlier_app_page = client.get("/sets")
    plain = create_app(base_config(backends, tmp_path, FORCE_HTTPS=False)).test_client()

    assert earlier_app_page.status_code == 200
    assert plain.get("/sets").status_code == 200
    assert "Strict-Transport-Security" not in plain.get("/sets", base_url="https://x").headers
    assert forcing.get("/sets").status_code == 302
    assert forcing.get("/healthz").status_code == 200


def test_each_app_keeps_its_own_rate_limits(backends: Backends, tmp_path: Path) -> None:
    limited = create_app(
        base_config(backends, tmp_path, RATELIMIT_ENABLED=True, RATELIMIT_ANONYMOUS="2 per minute")
    ).test_client()
    unlimited = create_app(base_config(backends, tmp_path, RATELIMIT_ENABLED=False)).test_client()

    limited_statuses = [limited.get("/sets").status_code for _ in range(3)]
    unlimited_statuses = {unlimited.get("/sets").status_code for _ in range(3)}

    assert limited_statuses == [200, 200, 429]
    assert unlimited_statuses == {200}
