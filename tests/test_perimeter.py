"""The perimeter every route shares: headers, rate limits, CORS, JSON-only bodies."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify, request
from flask.testing import FlaskClient
from redis import Redis

from set2tracks import create_app
from set2tracks.perimeter import cors_origins, init_cors
from tests.backends import Backends
from tests.conftest import base_config
from tests.factories import DjSetFactory, TrackFactory, UserFactory

TEMPLATES = Path(__file__).resolve().parent.parent / "set2tracks" / "templates"


def _limited_app(backends: Backends, tmp_path: Path, **overrides: Any) -> Flask:
    return create_app(
        base_config(
            backends,
            tmp_path,
            RATELIMIT_ENABLED=True,
            RATELIMIT_ANONYMOUS="3 per minute",
            RATELIMIT_AUTHENTICATED="5 per minute",
            **overrides,
        )
    )


# --- headers on every response -------------------------------------------------------------


def _filled(rule: str, values: dict[str, Any]) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: str(values[m.group(1)]), rule)


def _get_urls(app: Flask, values: dict[str, Any]) -> Iterator[str]:
    for rule in app.url_map.iter_rules():
        if "GET" in (rule.methods or set()) and rule.endpoint not in {"static", "docs.asset"}:
            yield _filled(rule.rule, values)


def _assert_security_headers(response: Any, where: str) -> None:
    policy = response.headers.get("Content-Security-Policy", "")
    directives = {}
    for part in filter(None, (part.strip() for part in policy.split(";"))):
        name, _, value = part.partition(" ")
        directives[name] = value
    assert directives.get("default-src") == "'self'", where
    assert directives.get("object-src") == "'none'", where
    assert directives.get("base-uri") == "'self'", where
    assert directives.get("frame-ancestors") == "'none'", where
    assert directives.get("frame-src") == "https://www.youtube-nocookie.com", where
    assert re.fullmatch(r"'self' 'nonce-[A-Za-z0-9_-]{20,}'", directives.get("script-src", "")), (
        where
    )
    assert "unsafe-inline" not in policy, where
    assert "unsafe-eval" not in policy, where
    assert response.headers.get("X-Content-Type-Options") == "nosniff", where
    assert response.headers.get("Referrer-Policy") == "strict-origin-when-cross-origin", where
    assert "camera=()" in response.headers.get("Permissions-Policy", ""), where
    assert response.headers.get("Cross-Origin-Opener-Policy") == "same-origin", where
    assert response.headers.get("X-Frame-Options") == "DENY", where
    assert response.headers.get("X-Request-ID"), where
    assert "Server" not in response.headers, where
    assert "X-Powered-By" not in response.headers, where
    for cookie in response.headers.getlist("Set-Cookie"):
        assert "HttpOnly" in cookie, (where, cookie)
        assert "SameSite=Lax" in cookie, (where, cookie)


def test_every_page_and_error_carries_the_security_headers(app: Flask, client: FlaskClient) -> None:
    dj_set = DjSetFactory()
    track = TrackFactory()
    values = {
        "set_id": dj_set.id,
        "track_id": track.id,
        "filename": "app.css",
        "code": "an-invite-code",
        "token": "a-reset-token",
        "submission_id": 1,
    }

    urls = [*_get_urls(app, values), "/static/app.css", "/no-such-page", "/api/v1/nothing"]
    for url in urls:
        _assert_security_headers(client.get(url), url)
    _assert_security_headers(client.post("/sets"), "405 page")
    _assert_security_headers(client.delete("/api/v1/sets"), "405 api")


def test_hsts_only_over_https_when_https_is_forced(backends: Backends, tmp_path: Path) -> None:
    app = create_app(base_config(backends, tmp_path, FORCE_HTTPS=True))

    response = app.test_client().get("/no-such-page", base_url="https://localhost")

    assert response.status_code == 404
    _assert_security_headers(response, "https 404")
    assert "includeSubDomains" in response.headers["Strict-Transport-Security"]


def test_no_template_marks_data_as_safe() -> None:
    offenders = [
        f"{path.relative_to(TEMPLATES)}:{number}"
        for path in TEMPLATES.rglob("*.html")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\|\s*safe\b|Markup\(|autoescape\s+false", line)
    ]

    assert offenders == []


# --- rate limits ---------------------------------------------------------------------------


def test_anonymous_clients_get_429_after_their_limit(backends: Backends, tmp_path: Path) -> None:
    client = _limited_app(backends, tmp_path).test_client()

    statuses = [client.get("/sets").status_code for _ in range(3)]
    page = client.get("/sets")
    api = client.get("/api/v1/sets")

    assert statuses == [200, 200, 200]
    assert page.status_code == 429
    assert "Too many requests" in page.text
    assert int(page.headers["Retry-After"]) > 0
    assert page.headers["RateLimit-Limit"] == "3"
    assert page.headers["RateLimit-Remaining"] == "0"
    assert api.status_code == 429
    assert api.mimetype == "application/problem+json"
    assert api.json["status"] == 429
    assert int(api.headers["Retry-After"]) > 0


def test_health_and_static_files_are_never_limited(backends: Backends, tmp_path: Path) -> None:
    client = _limited_app(backends, tmp_path).test_client()

    statuses = {
        client.get(url).status_code for url in ["/healthz", "/static/app.css", "/readyz"] * 5
    }

    assert statuses == {200}


def test_signed_in_people_are_counted_by_account_with_more_room(
    backends: Backends, tmp_path: Path
) -> None:
    app = _limited_app(backends, tmp_path)
    with app.app_context():
        user = UserFactory()
        token = user.session_token
        from set2tracks.extensions import db

        db.session.commit()
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = token
        session["_signed_in_at"] = int(time.time())

    statuses = [client.get("/sets").status_code for _ in range(6)]

    assert statuses == [200] * 5 + [429]


def test_a_forged_forwarded_for_does_not_reset_the_limit(
    backends: Backends, tmp_path: Path
) -> None:
    client = _limited_app(backends, tmp_path, PROXY_FIX_X_FOR=1).test_client()

    statuses = [
        client.get(
            "/sets", headers={"X-Forwarded-For": f"10.0.0.{attempt}, 203.0.113.7"}
        ).status_code
        for attempt in range(4)
    ]
    other_client = client.get("/sets", headers={"X-Forwarded-For": "203.0.113.8"})

    assert statuses == [200, 200, 200, 429]
    assert other_client.status_code == 200


@pytest.mark.redis
def test_limits_are_shared_through_redis(
    backends: Backends, tmp_path: Path, redis_url: str
) -> None:
    first = _limited_app(backends, tmp_path, RATELIMIT_STORAGE_URI=redis_url).test_client()
    second = _limited_app(backends, tmp_path, RATELIMIT_STORAGE_URI=redis_url).test_client()

    statuses = [first.get("/sets").status_code, second.get("/sets").status_code]
    statuses += [first.get("/sets").status_code, second.get("/sets").status_code]

    assert statuses == [200, 200, 200, 429]
    assert Redis.from_url(redis_url).keys("*s2t-rl*")


def test_with_redis_down_limits_fall_back_to_memory(backends: Backends, tmp_path: Path) -> None:
    app = _limited_app(
        backends,
        tmp_path,
        TESTING=False,
        RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0",
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        RATELIMIT_SWALLOW_ERRORS=True,
    )
    client = app.test_client()

    statuses = [client.get("/sets").status_code for _ in range(5)]

    assert 500 not in statuses
    assert statuses[0] == 200
    assert 429 in statuses


# --- CORS ----------------------------------------------------------------------------------


def test_cors_only_for_configured_origins_on_the_api(backends: Backends, tmp_path: Path) -> None:
    app = create_app(base_config(backends, tmp_path, CORS_ORIGINS=["https://app.example"]))
    client = app.test_client()

    allowed = client.get("/api/v1/sets", headers={"Origin": "https://app.example"})
    evil = client.get("/api/v1/sets", headers={"Origin": "https://evil.example"})
    null = client.get("/api/v1/sets", headers={"Origin": "null"})
    page = client.get("/sets", headers={"Origin": "https://app.example"})
    preflight = client.options(
        "/api/v1/sets",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE"},
    )

    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert "X-Request-ID" in allowed.headers["Access-Control-Expose-Headers"]
    for response in (evil, null, page, preflight):
        assert "Access-Control-Allow-Origin" not in response.headers


def test_a_route_can_allow_extra_origins() -> None:
    app = Flask(__name__)
    app.config["CORS_ORIGINS"] = ["https://app.example"]

    @app.get("/api/v1/videos/<video_id>/status")
    @cors_origins("https://www.youtube.com")
    def video_status(video_id: str) -> Any:
        return jsonify(video_id=video_id)

    @app.get("/api/v1/sets")
    def sets() -> Any:
        return jsonify(items=[])

    init_cors(app)
    client = app.test_client()
    youtube = {"Origin": "https://www.youtube.com"}

    assert (
        client.get("/api/v1/videos/abc/status", headers=youtube).headers[
            "Access-Control-Allow-Origin"
        ]
        == "https://www.youtube.com"
    )
    assert "Access-Control-Allow-Origin" not in client.get("/api/v1/sets", headers=youtube).headers
    assert (
        client.get("/api/v1/sets", headers={"Origin": "https://app.example"}).headers[
            "Access-Control-Allow-Origin"
        ]
        == "https://app.example"
    )


# --- bodies --------------------------------------------------------------------------------


@pytest.fixture
def echo_app(backends: Backends, tmp_path: Path) -> Flask:
    app = create_app(base_config(backends, tmp_path, WTF_CSRF_ENABLED=False))

    @app.post("/api/v1/echo")
    def echo() -> Any:
        return jsonify(request.get_json())

    return app


def test_api_bodies_must_be_json(echo_app: Flask) -> None:
    client = echo_app.test_client()

    form = client.post("/api/v1/echo", data={"a": "b"})
    text = client.post("/api/v1/echo", data="a=b", content_type="text/plain")
    good = client.post("/api/v1/echo", json={"a": "b"})

    for response in (form, text):
        assert response.status_code == 415
        assert response.mimetype == "application/problem+json"
    assert good.json == {"a": "b"}


def test_oversized_bodies_are_413(echo_app: Flask) -> None:
    response = echo_app.test_client().post(
        "/api/v1/echo", data=b"[" + b"0," * 600_000 + b"0]", content_type="application/json"
    )

    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


# --- input ---------------------------------------------------------------------------------


def test_unknown_query_parameters_are_rejected(client: FlaskClient) -> None:
    response = client.get("/api/v1/sets", query_string={"limit": 5, "is_hidden": "true"})

    assert response.status_code == 422
    assert response.json["errors"]["query"] == {"is_hidden": ["Unknown field."]}


def test_ids_beyond_what_the_database_holds_are_404(client: FlaskClient) -> None:
    for url in ("/sets/", "/tracks/", "/api/v1/sets/", "/api/v1/tracks/"):
        for set_id in ("0", "-1", str(2**31), "9" * 40):
            assert client.get(url + set_id).status_code == 404, url + set_id


def test_nul_bytes_are_400(client: FlaskClient) -> None:
    page = client.get("/sets?q=%00abc")
    api = client.get("/api/v1/sets?q=a%00")
    key = client.get("/api/v1/tracks?%00=1")

    assert page.status_code == 400
    assert page.mimetype == "text/html"
    for response in (api, key):
        assert response.status_code == 400
        assert response.mimetype == "application/problem+json"
        assert response.json["detail"] == "The request contains a NUL byte."


def test_nul_bytes_in_forms_are_400(client: FlaskClient) -> None:
    response = client.post("/login", data={"email": "a\x00@example.com", "password": "x"})

    assert response.status_code == 400
    assert "NUL byte" in response.text


def test_unstorable_json_text_is_422(app: Flask) -> None:
    from tests.auth.helpers import csrf_token, sign_in

    client = app.test_client()
    # Tokens are created from a signed-in browser (an API token may not mint another).
    sign_in(client, UserFactory())
    headers = {"X-CSRFToken": csrf_token(client)}

    for name in ("a\x00b", "lone \ud800 surrogate"):
        response = client.post("/api/v1/me/tokens", json={"name": name}, headers=headers)
        assert response.status_code == 422
        assert response.json["errors"]["json"]["name"] == [
            "Contains a character that is not allowed."
        ]
