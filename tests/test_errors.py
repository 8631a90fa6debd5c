"""Errors: problem+json under /api, friendly pages elsewhere, never a traceback."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_login.utils import encode_cookie

from set2tracks import create_app
from tests.auth.helpers import sign_in
from tests.backends import Backends
from tests.conftest import base_config
from tests.factories import UserFactory


@pytest.fixture
def fragile_app(backends: Backends, tmp_path: Path) -> Flask:
    """An app like production (exceptions not propagated) with a route that crashes."""
    app = create_app(base_config(backends, tmp_path, TESTING=False))

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals: /srv/app/config.py password=hunter2")

    @app.get("/api/v1/boom")
    def api_boom() -> str:
        raise RuntimeError("secret internals")

    return app


def test_unknown_page_renders_the_404_page(client: FlaskClient) -> None:
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Page not found" in response.text
    assert response.headers["X-Request-ID"] in response.text


def test_unknown_api_path_is_problem_json(client: FlaskClient) -> None:
    response = client.get("/api/v1/no-such-thing")

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 404
    assert response.json["title"] == "Not Found"
    assert response.json["request_id"] == response.headers["X-Request-ID"]


def test_wrong_method_is_405_with_allow_header(client: FlaskClient) -> None:
    response = client.post("/api/v1/sets", json={})

    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert "GET" in response.headers["Allow"]


def test_crash_shows_a_generic_page_without_internals(fragile_app: Flask) -> None:
    response = fragile_app.test_client().get("/boom")

    assert response.status_code == 500
    assert "Something went wrong" in response.text
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    assert "hunter2" not in response.text


def test_crash_under_api_is_problem_json_without_internals(fragile_app: Flask) -> None:
    response = fragile_app.test_client().get("/api/v1/boom")

    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert "secret internals" not in response.get_data(as_text=True)
    assert response.json["request_id"]


def test_database_down_is_503_with_retry_after(backends: Backends, tmp_path: Path) -> None:
    app = create_app(
        base_config(
            backends,
            tmp_path,
            TESTING=False,
            SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:1/set2tracks_test",
        )
    )
    client = app.test_client()

    page = client.get("/sets")
    api = client.get("/api/v1/sets")

    assert page.status_code == 503
    assert "Temporarily unavailable" in page.text
    assert page.headers["Retry-After"]
    assert api.status_code == 503
    assert api.mimetype == "application/problem+json"
    assert api.headers["Retry-After"]
    assert "psycopg" not in api.get_data(as_text=True)


def test_redis_down_refuses_session_requests_but_serves_anonymous_ones(
    backends: Backends, tmp_path: Path
) -> None:
    app = create_app(
        base_config(
            backends,
            tmp_path,
            TESTING=False,
            REDIS_URL="redis://127.0.0.1:1/0",
            SESSION_TYPE="redis",
        )
    )
    anonymous = app.test_client().get("/sets")
    client = app.test_client()
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], "a-session-id")

    response = client.get("/sets")

    assert anonymous.status_code == 200

    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "Traceback" not in response.text
    assert "Temporarily unavailable" in response.text


# PostgreSQL stopped (nothing listens on port 1) and SQLite's file out of reach.
DEAD_DATABASES = {
    "postgresql": "postgresql+psycopg://nobody@127.0.0.1:1/set2tracks_test",
    "sqlite": "sqlite:////nonexistent-directory/set2tracks.db",
}
SECURITY_HEADERS = (
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
)


def _signed_in_cookies(app: Flask, remember: bool) -> dict[str, str]:
    """Return the cookies of a browser signed in to ``app`` (session, or remember only)."""
    user = UserFactory()
    client = app.test_client()
    if remember:
        with app.test_request_context():
            # As a sign-in makes it: session token, sign-in time, remember token.
            value = f"{user.get_id()}.{int(time.time())}.{user.remember_token or 'unset'}"
            return {app.config["REMEMBER_COOKIE_NAME"]: encode_cookie(value)}
    sign_in(client, user)
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    return {app.config["SESSION_COOKIE_NAME"]: cookie.value}


@pytest.mark.parametrize("dialect", sorted(DEAD_DATABASES))
@pytest.mark.parametrize("credential", ["session", "remember"])
def test_database_down_gives_a_signed_in_visitor_the_503_page(
    backends: Backends,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    dialect: str,
    credential: str,
) -> None:
    # Same secret key and session store: the cookies of the working app are valid here.
    working = create_app(base_config(backends, tmp_path, TESTING=False))
    cookies = _signed_in_cookies(working, remember=credential == "remember")
    broken = create_app(
        base_config(
            backends,
            tmp_path,
            TESTING=False,
            SQLALCHEMY_DATABASE_URI=DEAD_DATABASES[dialect],
            # As in production: the limiter keys signed-in people by their account, falls
            # back to memory and swallows its storage's errors.
            RATELIMIT_ENABLED=True,
            RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
            RATELIMIT_SWALLOW_ERRORS=True,
        )
    )
    client = broken.test_client()
    for name, value in cookies.items():
        client.set_cookie(name, value)

    with caplog.at_level(logging.INFO):
        page = client.get("/sets")
        api = client.get("/api/v1/me")

    assert page.status_code == 503
    assert "Temporarily unavailable" in page.text
    assert page.headers["Retry-After"]
    assert page.headers["X-Request-ID"] in page.text
    assert api.status_code == 503
    assert api.mimetype == "application/problem+json"
    assert api.json["request_id"] == api.headers["X-Request-ID"]
    for response in (page, api):
        for header in SECURITY_HEADERS:
            assert header in response.headers, header
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in problems] == ["dependency unavailable: OperationalError"] * 2
    assert not any(r.exc_info or r.exc_text for r in problems)


def test_error_page_falls_back_to_a_static_body_when_rendering_fails(
    backends: Backends, tmp_path: Path
) -> None:
    app = create_app(base_config(backends, tmp_path, TESTING=False))

    @app.context_processor
    def broken_context() -> dict[str, str]:
        raise RuntimeError("the template engine is broken too")

    response = app.test_client().get("/no-such-page")

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Page not found" in response.text or "Not Found" in response.text
    assert response.headers["X-Request-ID"] in response.text
    assert "Traceback" not in response.text
    assert "Content-Security-Policy" in response.headers
