"""Sessions and cookies: sign-out, "keep me signed in", lifetimes, caching, the store."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from cachelib import FileSystemCache
from flask import Flask
from flask.testing import FlaskClient
from flask_login import encode_cookie
from flask_migrate import upgrade
from redis import Redis
from sqlalchemy import text

from set2tracks import create_app
from set2tracks.auth import services, views
from set2tracks.extensions import db
from set2tracks.queues import inline_runner
from tests.auth.helpers import (
    NEW_PASSWORD,
    PASSWORD,
    csrf_token,
    login,
    make_user,
    outbox,
    post,
    session_cookie,
    sign_in,
    signed_in_as,
)
from tests.backends import Backends
from tests.conftest import base_config

DAY = 24 * 3600


def remember_cookie(app: Flask, client: FlaskClient) -> str | None:
    cookie = client.get_cookie(app.config["REMEMBER_COOKIE_NAME"])
    return cookie.value if cookie else None


def with_cookies(app: Flask, *, remember: str | None, session: str | None = None) -> FlaskClient:
    """A browser holding copies of someone's cookies."""
    client = app.test_client()
    if remember:
        client.set_cookie(app.config["REMEMBER_COOKIE_NAME"], remember)
    if session:
        client.set_cookie(app.config["SESSION_COOKIE_NAME"], session)
    return client


def remembered_client(app: Flask) -> tuple[FlaskClient, str]:
    client = app.test_client()
    assert login(client, "ada@example.com", PASSWORD, remember="y").status_code == 302
    remember = remember_cookie(app, client)
    assert remember is not None
    return client, remember


# --- item 1: signing out ends "keep me signed in" ------------------------------------------


def test_sign_out_ends_keep_me_signed_in_and_every_copy_of_its_cookies(app: Flask) -> None:
    make_user()
    client, remember = remembered_client(app)
    session = session_cookie(app, client)
    other_device = app.test_client()
    login(other_device, "ada@example.com", PASSWORD)

    response = post(client, "/logout")

    assert response.status_code == 302
    assert remember_cookie(app, client) is None
    assert signed_in_as(client) is None
    assert client.get("/account").status_code == 302
    copied = with_cookies(app, remember=remember, session=session)
    assert signed_in_as(copied) is None
    assert copied.get("/account").status_code == 302
    # Signing out one browser is not signing out the others.
    assert signed_in_as(other_device) == "ada@example.com"


def test_sign_out_everywhere_ends_every_session_and_remember_cookie(app: Flask) -> None:
    make_user()
    laptop, laptop_remember = remembered_client(app)
    phone, phone_remember = remembered_client(app)
    plain = app.test_client()
    login(plain, "ada@example.com", PASSWORD)

    response = post(laptop, "/account/sign-out-everywhere")

    assert response.status_code == 302
    assert remember_cookie(app, laptop) is None
    for client in (laptop, phone, plain):
        assert signed_in_as(client) is None
    assert signed_in_as(with_cookies(app, remember=phone_remember)) is None
    assert signed_in_as(with_cookies(app, remember=laptop_remember)) is None


def test_password_change_ends_remember_cookies(app: Flask) -> None:
    make_user()
    client, remember = remembered_client(app)
    _, other_remember = remembered_client(app)

    response = post(
        client,
        "/account/password",
        {"password-current_password": PASSWORD, "password-new_password": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert remember_cookie(app, client) is None
    assert signed_in_as(client) == "ada@example.com"
    assert signed_in_as(with_cookies(app, remember=remember)) is None
    assert signed_in_as(with_cookies(app, remember=other_remember)) is None


def test_password_reset_ends_remember_cookies(app: Flask) -> None:
    user = make_user()
    client, remember = remembered_client(app)
    token = services.make_reset_token(user)

    response = post(client, f"/reset-password/{token}", {"password": NEW_PASSWORD})

    assert response.status_code == 302
    assert remember_cookie(app, client) is None
    assert signed_in_as(client) is None
    assert signed_in_as(with_cookies(app, remember=remember)) is None


def test_account_deletion_ends_the_remember_cookie(app: Flask) -> None:
    make_user()
    client, remember = remembered_client(app)

    response = post(client, "/account/delete", {"delete-password": PASSWORD})

    assert response.status_code == 302
    assert remember_cookie(app, client) is None
    assert signed_in_as(with_cookies(app, remember=remember)) is None


def test_the_remember_cookie_lasts_30_days_read_off_the_cookie(app: Flask) -> None:
    make_user()
    client = app.test_client()

    response = login(client, "ada@example.com", PASSWORD, remember="y")

    header = next(
        value
        for value in response.headers.getlist("Set-Cookie")
        if value.startswith(app.config["REMEMBER_COOKIE_NAME"] + "=")
    )
    attributes = dict(part.strip().split("=", 1) for part in header.split(";")[1:] if "=" in part)
    expires = parsedate_to_datetime(attributes["Expires"])
    lifetime = expires - datetime.now(UTC)
    assert timedelta(days=29, hours=23) < lifetime <= timedelta(days=30)
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header


# --- item 12: a sign-in through the remember cookie gets a new session id ------------------


def test_a_remember_cookie_sign_in_does_not_keep_the_session_id_sent(app: Flask) -> None:
    make_user()
    _, remember = remembered_client(app)
    attacker = app.test_client()
    with attacker.session_transaction() as stored:
        stored["visited"] = True  # any stored session the attacker knows the id of
    planted = session_cookie(app, attacker)
    assert planted is not None
    victim = with_cookies(app, remember=remember, session=planted)

    assert signed_in_as(victim) == "ada@example.com"
    assert session_cookie(app, victim) != planted
    assert signed_in_as(attacker) is None
    assert signed_in_as(victim) == "ada@example.com"


# --- item 20: a sign-in ends 30 days after it happened, however often it is refreshed ------


def test_a_sign_in_ends_30_days_after_it_happened(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user()
    client, remember = remembered_client(app)
    started = time.time()

    monkeypatch.setattr(views, "_now", lambda: started + 29 * DAY, raising=False)
    assert signed_in_as(client) == "ada@example.com"
    assert signed_in_as(with_cookies(app, remember=remember)) == "ada@example.com"

    monkeypatch.setattr(views, "_now", lambda: started + 30 * DAY + 60, raising=False)
    assert signed_in_as(client) is None
    assert signed_in_as(with_cookies(app, remember=remember)) is None


# --- item 13: nothing about an account is cached -------------------------------------------


def test_account_pages_and_signed_in_responses_are_not_stored_by_caches(app: Flask) -> None:
    user = make_user()
    token = services.create_api_token(user.id, "script").secret
    anonymous = app.test_client()
    client = app.test_client()
    sign_in(client, user)

    assert anonymous.get("/login").headers.get("Cache-Control") == "no-store"
    assert anonymous.get("/reset-password").headers.get("Cache-Control") == "no-store"
    assert client.get("/account").headers.get("Cache-Control") == "no-store"
    assert client.get("/sets").headers.get("Cache-Control") == "no-store"
    me = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.headers.get("Cache-Control") == "no-store"
    tokens = app.test_client().get(
        "/api/v1/me/tokens", headers={"Authorization": f"Bearer {token}"}
    )
    assert tokens.headers.get("Cache-Control") == "no-store"
    assert anonymous.get("/sets").headers.get("Cache-Control") != "no-store"


# --- item 23: anonymous visitors create no stored sessions ---------------------------------


def test_anonymous_page_views_store_no_session_and_sign_in_still_works(app: Flask) -> None:
    store = Path(app.config["SESSION_FILE_DIR"])
    before = set(store.iterdir()) if store.exists() else set()
    make_user()

    for _ in range(10):
        visitor = app.test_client()
        for url in ("/login", "/register", "/reset-password", "/sets"):
            assert visitor.get(url).status_code == 200
    after_views = set(store.iterdir()) if store.exists() else set()
    client = app.test_client()
    signed_in = login(client, "ada@example.com", PASSWORD)

    assert after_views == before
    assert signed_in.status_code == 302
    assert signed_in_as(client) == "ada@example.com"


def test_a_signed_in_session_outlives_a_flood_of_anonymous_visitors(
    backends: Backends, tmp_path: Path
) -> None:
    # The embedded store keeps 500 sessions and then drops a third of them; 10 here, to
    # make the same happen in a few hundred requests.
    store = FileSystemCache(str(tmp_path / "small-store"), threshold=10, mode=0o600)
    app = create_app(base_config(backends, tmp_path, MAIL_BACKEND="memory", SESSION_CACHELIB=store))
    with app.app_context():
        make_user()
    client = app.test_client()
    login(client, "ada@example.com", PASSWORD)

    for _ in range(200):
        app.test_client().get("/login")

    assert signed_in_as(client) == "ada@example.com"


# --- item 11 and the per-account budget of signed-in clients -------------------------------


def sign_in_with(client: FlaskClient, session_token: str) -> None:
    with client.session_transaction() as session:
        session["_user_id"] = session_token
        session["_signed_in_at"] = int(time.time())


def _limited(backends: Backends, tmp_path: Path, **overrides: Any) -> Flask:
    return create_app(
        base_config(
            backends,
            tmp_path,
            RATELIMIT_ENABLED=True,
            RATELIMIT_ANONYMOUS="100 per minute",
            RATELIMIT_AUTHENTICATED="5 per minute",
            **overrides,
        )
    )


def test_signed_in_clients_are_limited_per_account_not_per_address(
    backends: Backends, tmp_path: Path
) -> None:
    app = _limited(backends, tmp_path)
    with app.app_context():
        ada = make_user().get_id()
        bob = make_user("bob@example.com").get_id()
    statuses = []
    for attempt in range(6):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"198.51.100.{attempt}"
        sign_in_with(client, ada)
        statuses.append(client.get("/sets").status_code)
    same_address_other_account = app.test_client()
    same_address_other_account.environ_base["REMOTE_ADDR"] = "198.51.100.5"
    sign_in_with(same_address_other_account, bob)

    assert statuses == [200] * 5 + [429]
    assert same_address_other_account.get("/sets").status_code == 200


@pytest.mark.redis
def test_rate_limit_keys_name_the_account_id_never_its_session_token(
    backends: Backends, tmp_path: Path, redis_url: str
) -> None:
    app = _limited(backends, tmp_path, RATELIMIT_STORAGE_URI=redis_url)
    with app.app_context():
        user = make_user()
        user_id, session_token = user.id, user.get_id()
    client = app.test_client()
    sign_in_with(client, session_token)

    assert client.get("/sets").status_code == 200

    keys = [key.decode() for key in Redis.from_url(redis_url).keys("*")]
    assert any(f"user:{user_id}" in key for key in keys), keys
    assert not any(session_token in key for key in keys)


# --- disabled accounts, CSRF on JSON, the cost of an unknown email --------------------------


def test_a_disabled_account_is_refused_everywhere_with_401(app: Flask) -> None:
    user = make_user()
    token = services.create_api_token(user.id, "script").secret
    user.is_disabled = True
    services.db.session.commit()  # type: ignore[attr-defined]
    outbox(app).clear()
    client = app.test_client()

    api = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    signing_in = login(client, "ada@example.com", PASSWORD)
    reset = post(client, "/reset-password", {"email": "ada@example.com"})
    assert inline_runner().join(timeout=10)

    assert api.status_code == 401
    assert api.mimetype == "application/problem+json"
    assert signing_in.status_code == 401
    assert "Location" not in signing_in.headers
    assert signed_in_as(client) is None
    assert reset.status_code == 200
    assert outbox(app) == []


def test_a_cookie_signed_in_json_write_needs_the_csrf_header(app: Flask) -> None:
    user = make_user()
    client = app.test_client()
    login(client, "ada@example.com", PASSWORD)

    refused = client.post("/api/v1/me/tokens", json={"name": "no header"})
    accepted = client.post(
        "/api/v1/me/tokens",
        json={"name": "with header"},
        headers={"X-CSRFToken": csrf_token(client)},
    )

    assert refused.status_code == 400
    assert accepted.status_code == 201
    assert [token.name for token in services.list_api_tokens(user.id)] == ["with header"]


def test_an_unknown_email_costs_the_same_password_check_as_a_wrong_password(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    from set2tracks.auth import passwords

    make_user()
    checks: list[str] = []
    real_check = passwords.check_password_hash

    def counted(stored: str, password: str) -> bool:
        checks.append(stored.split("$", 1)[0])
        return real_check(stored, password)

    monkeypatch.setattr(passwords, "check_password_hash", counted)
    client = app.test_client()

    assert login(client, "ada@example.com", "not the password!").status_code == 401
    wrong = list(checks)
    checks.clear()
    assert login(client, "nobody@example.com", "not the password!").status_code == 401

    assert len(wrong) == 1
    # One check of the same kind and cost (method and parameters sit before the salt).
    assert checks == wrong


# --- the same on the production store (Redis) -----------------------------------------------


@pytest.mark.redis
def test_on_redis_sessions_sign_out_ends_copies_and_visitors_store_nothing(
    backends: Backends, tmp_path: Path, redis_url: str
) -> None:
    app = create_app(
        base_config(
            backends, tmp_path, MAIL_BACKEND="memory", SESSION_TYPE="redis", REDIS_URL=redis_url
        )
    )
    store = Redis.from_url(redis_url)
    with app.app_context():
        make_user()

    for _ in range(5):
        app.test_client().get("/login")
    assert store.keys("s2t-session:*") == []

    client, remember = remembered_client(app)
    session = session_cookie(app, client)
    assert store.exists(f"s2t-session:{session}")
    post(client, "/logout")

    assert not store.exists(f"s2t-session:{session}")
    assert signed_in_as(with_cookies(app, remember=remember, session=session)) is None


# --- review C: sessions and cookies from before sign-in times sign nobody in ---------------


def test_an_old_format_remember_cookie_or_session_signs_nobody_in(app: Flask) -> None:
    """Before sign-in times, the remember cookie held the session token alone."""
    user = make_user()
    old_cookie = with_cookies(app, remember=encode_cookie(user.session_token))
    old_session = app.test_client()
    with old_session.session_transaction() as session:
        session["_user_id"] = user.session_token
        session["_fresh"] = True

    assert signed_in_as(old_cookie) is None
    # The browser is told to drop it, rather than send it (and have it tried) forever.
    assert remember_cookie(app, old_cookie) is None
    assert old_cookie.get("/account").status_code == 302
    assert signed_in_as(old_session) is None
    # Nothing is left to sign in with later either.
    assert signed_in_as(old_session) is None


def test_the_account_migration_ends_every_session_from_before(
    backends: Backends, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'scratch.db'}"
    scratch = create_app(base_config(backends, tmp_path, SQLALCHEMY_DATABASE_URI=url))
    with scratch.app_context():
        upgrade(revision="a41c7e2d9b10")
        for n in range(2):
            db.session.execute(
                text(
                    "INSERT INTO users (email, password_hash, display_name, is_admin, is_premium,"
                    " is_disabled, session_token, created_at, updated_at) VALUES (:email, 'x',"
                    " 'Old', false, false, false, :token, :now, :now)"
                ),
                {"email": f"old{n}@example.com", "token": f"old-token-{n}", "now": "2026-11-01"},
            )
        db.session.commit()
        upgrade(revision="c7a3e91f5d24")
        tokens = list(db.session.scalars(text("SELECT session_token FROM users")))
        db.engine.dispose()

    assert len(tokens) == 2
    assert not {"old-token-0", "old-token-1"} & set(tokens)
    assert len(set(tokens)) == 2


# --- review D: no anonymous request stores a session ---------------------------------------


def test_anonymous_requests_with_dead_cookies_or_sign_outs_store_no_session(app: Flask) -> None:
    store = Path(app.config["SESSION_FILE_DIR"])
    user = make_user()
    _, remember = remembered_client(app)
    dead = with_cookies(app, remember=remember)
    post(dead, "/logout")  # the remember cookie is now dead but still validly signed
    before = set(store.iterdir()) if store.exists() else set()

    for _ in range(5):
        assert signed_in_as(with_cookies(app, remember=remember)) is None
        assert with_cookies(app, remember=remember).get("/sets").status_code == 200
    logouts = []
    for _ in range(5):
        visitor = app.test_client()
        logouts.append(post(visitor, "/logout"))
    after = set(store.iterdir()) if store.exists() else set()

    assert after == before
    assert {response.status_code for response in logouts} == {302}
    assert user.id is not None


# --- review E: a CSRF token from before sign-in does not carry into it ----------------------


def test_a_csrf_token_from_before_sign_in_is_refused_after_it(app: Flask) -> None:
    make_user()
    victim = app.test_client()
    planted = csrf_token(victim)  # minted for the anonymous cookie an attacker could plant
    assert login(victim, "ada@example.com", PASSWORD).status_code == 302

    with_old_token = victim.post("/logout", data={"csrf_token": planted})

    assert with_old_token.status_code == 400
    assert signed_in_as(victim) == "ada@example.com"
    assert csrf_token(victim) != planted
    assert post(victim, "/logout").status_code == 302
    assert signed_in_as(victim) is None


def test_a_csrf_token_from_before_sign_out_is_refused_after_it(app: Flask) -> None:
    make_user()
    client = app.test_client()
    assert login(client, "ada@example.com", PASSWORD).status_code == 302
    signed_in_token = csrf_token(client)
    assert post(client, "/logout").status_code == 302

    replayed = client.post(
        "/login",
        data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": signed_in_token},
    )

    assert replayed.status_code == 400
    assert signed_in_as(client) is None


def test_the_anonymous_csrf_cookie_expires(app: Flask) -> None:
    client = app.test_client()
    client.get("/login")
    cookie = client.get_cookie(app.config["ANONYMOUS_CSRF_COOKIE_NAME"])

    assert cookie is not None
    assert cookie.expires is not None
    lifetime = cookie.expires.timestamp() - time.time()
    assert 0 < lifetime <= app.config["ANONYMOUS_CSRF_LIFETIME"].total_seconds()
