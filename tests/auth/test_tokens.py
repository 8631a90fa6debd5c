"""API tokens and password changes: what survives a password change, reset and revocation."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from set2tracks.auth import services
from set2tracks.auth.models import ApiToken, User, UserPreferences
from set2tracks.extensions import db
from tests.auth.helpers import (
    NEW_PASSWORD,
    PASSWORD,
    csrf_token,
    login,
    make_user,
    meeting_before_insert,
    meeting_before_update,
    post,
)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def works(app: Flask, value: str) -> bool:
    return app.test_client().get("/api/v1/me", headers=bearer(value)).status_code == 200


# --- item 4 ---------------------------------------------------------------------------------


def test_a_password_reset_revokes_every_api_token(app: Flask) -> None:
    user = make_user()
    tokens = [services.create_api_token(user.id, f"script {n}").secret for n in range(2)]
    reset = services.make_reset_token(user)

    response = post(app.test_client(), f"/reset-password/{reset}", {"password": NEW_PASSWORD})

    assert response.status_code == 302
    assert not any(works(app, value) for value in tokens)
    assert services.list_api_tokens(user.id) == []


@pytest.mark.parametrize("revoke", [True, False])
def test_a_password_change_revokes_api_tokens_when_asked(app: Flask, revoke: bool) -> None:
    user = make_user()
    value = services.create_api_token(user.id, "script").secret
    client = app.test_client()
    login(client, "ada@example.com", PASSWORD)
    page = client.get("/account").text
    form = {"password-current_password": PASSWORD, "password-new_password": NEW_PASSWORD}
    if revoke:
        form["password-revoke_tokens"] = "y"

    response = post(client, "/account/password", form)

    checkbox = re.search(r'<input[^>]*name="password-revoke_tokens"[^>]*>', page)
    assert checkbox is not None
    assert "checked" in checkbox.group(0)  # offered, on by default
    assert response.status_code == 302
    assert works(app, value) is not revoke


def test_an_account_has_at_most_20_working_tokens(app: Flask) -> None:
    user = make_user()
    for n in range(20):
        services.create_api_token(user.id, f"script {n}")
    client = app.test_client()
    login(client, "ada@example.com", PASSWORD)

    refused = client.post(
        "/api/v1/me/tokens", json={"name": "one more"}, headers={"X-CSRFToken": csrf_token(client)}
    )
    page = post(client, "/account/tokens", {"token-name": "one more"})
    services.revoke_api_token(user.id, services.list_api_tokens(user.id)[0].id)
    room_again = client.post(
        "/api/v1/me/tokens", json={"name": "one more"}, headers={"X-CSRFToken": csrf_token(client)}
    )

    assert refused.status_code == 409
    assert refused.mimetype == "application/problem+json"
    assert page.status_code == 409
    assert "revoke one" in page.text
    assert room_again.status_code == 201
    assert len(services.list_api_tokens(user.id)) == 20


def test_a_token_can_expire(app: Flask) -> None:
    user = make_user()
    client = app.test_client()
    login(client, "ada@example.com", PASSWORD)

    created = client.post(
        "/api/v1/me/tokens",
        json={"name": "a month", "expires_in_days": 30},
        headers={"X-CSRFToken": csrf_token(client)},
    )
    bad = client.post(
        "/api/v1/me/tokens",
        json={"name": "odd", "expires_in_days": 12},
        headers={"X-CSRFToken": csrf_token(client)},
    )
    value = created.json["token"]
    still_works = works(app, value)
    token = db.session.get(ApiToken, created.json["id"])
    assert token is not None
    assert token.expires_at is not None
    token.expires_at = services.utcnow() - timedelta(seconds=1)
    db.session.commit()

    assert created.status_code == 201
    assert bad.status_code == 422
    assert still_works
    assert not works(app, value)
    assert services.list_api_tokens(user.id) == []


def test_a_revoked_token_leaves_the_token_list(app: Flask) -> None:
    user = make_user()
    kept = services.create_api_token(user.id, "kept").secret
    gone = services.create_api_token(user.id, "gone")
    api = app.test_client()

    deleted = api.delete(f"/api/v1/me/tokens/{gone.id}", headers=bearer(kept))
    listed = api.get("/api/v1/me/tokens", headers=bearer(kept))
    client = app.test_client()
    login(client, "ada@example.com", PASSWORD)

    assert deleted.status_code == 204
    assert [item["name"] for item in listed.json["items"]] == ["kept"]
    assert not works(app, gone.secret)
    assert "gone" not in client.get("/account").text


# --- item 23: a token's last use is written at most once a minute ---------------------------


def test_last_used_is_written_at_most_once_a_minute(app: Flask) -> None:
    user = make_user()
    issued = services.create_api_token(user.id, "script")
    token = db.session.get(ApiToken, issued.id)
    assert token is not None
    recent = services.utcnow() - timedelta(seconds=30)
    token.last_used_at = recent
    db.session.commit()

    assert works(app, issued.secret)
    db.session.refresh(token)
    unchanged = token.last_used_at
    token.last_used_at = services.utcnow() - timedelta(minutes=2)
    db.session.commit()
    assert works(app, issued.secret)
    db.session.refresh(token)

    assert unchanged == recent
    assert token.last_used_at is not None
    assert token.last_used_at > recent


@pytest.mark.committing
def test_two_token_creations_racing_at_the_cap_make_one_token_and_no_error(app: Flask) -> None:
    """Both requests have read the account (as the signed-in request does) before writing."""
    with app.app_context():
        user_id = make_user().id
        for n in range(services.MAX_ACTIVE_TOKENS - 1):
            services.create_api_token(user_id, f"script {n}")
    outcomes: list[str] = []
    have_read = threading.Barrier(2)

    def create(name: str) -> None:
        with app.app_context():
            db.session.get(User, user_id)
            have_read.wait(timeout=10)
            try:
                services.create_api_token(user_id, name)
                outcomes.append("created")
            except services.Conflict:  # type: ignore[attr-defined]
                outcomes.append("refused")
            except Exception as error:  # what a request would turn into a 500
                outcomes.append(type(error).__name__)

    with app.app_context(), meeting_before_insert("api_tokens"):
        threads = [threading.Thread(target=create, args=(name,)) for name in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    assert sorted(outcomes) == ["created", "refused"]
    with app.app_context():
        assert len(services.list_api_tokens(user_id)) == services.MAX_ACTIVE_TOKENS


# --- review 2, number 5: token creation saves only the token -------------------------------


@pytest.mark.committing
def test_creating_a_token_never_saves_the_callers_unsaved_changes(app: Flask) -> None:
    """The lock before counting must not commit whatever the caller left half done."""
    with app.app_context():
        user = make_user()
        user_id = user.id
        user.display_name = "Half done"
        with pytest.raises(RuntimeError):
            services.create_api_token(user_id, "script")
        db.session.rollback()
    with app.app_context():
        saved = db.session.get(User, user_id)
        assert saved is not None
        assert saved.display_name == "Ada"
        assert services.list_api_tokens(user_id) == []


@pytest.mark.postgres
@pytest.mark.committing
def test_a_database_lock_timeout_is_not_passed_off_as_a_concurrent_creation(app: Flask) -> None:
    """Only SQLite's "database is locked" means another creation: a PostgreSQL error is a 503."""
    with app.app_context():
        user_id = make_user().id
        blocker = db.engine.connect()
        holding = blocker.begin()
        blocker.execute(select(User).where(User.id == user_id).with_for_update())

        def short_lock_timeout(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.lstrip().upper().startswith("UPDATE USERS "):
                cursor.execute("SET LOCAL lock_timeout = '100ms'")

        event.listen(db.engine, "before_cursor_execute", short_lock_timeout)
        try:
            with pytest.raises(OperationalError):
                services.create_api_token(user_id, "script")
        finally:
            event.remove(db.engine, "before_cursor_execute", short_lock_timeout)
            holding.rollback()
            blocker.close()
        assert services.list_api_tokens(user_id) == []


# --- item 18: one reset link sets one password, even under concurrent use ------------------


@pytest.mark.postgres
@pytest.mark.committing
def test_two_requests_racing_with_one_reset_link_set_one_password(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both requests have checked the link before either writes."""
    with app.app_context():
        user = make_user()
        link = services.make_reset_token(user)
    outcomes: list[str] = []

    def reset(password: str) -> None:
        with app.app_context():
            try:
                services.reset_password(link, password)
                outcomes.append(password)
            except services.InvalidInput:  # type: ignore[attr-defined]
                outcomes.append("refused")

    passwords = ["first racer passphrase 1", "second racer passphrase 2"]
    with app.app_context(), meeting_before_update("users"):
        threads = [threading.Thread(target=reset, args=(password,)) for password in passwords]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    assert outcomes.count("refused") == 1
    winner = next(outcome for outcome in outcomes if outcome != "refused")
    with app.app_context():
        assert services.authenticate("ada@example.com", winner) is not None


# --- preferences -----------------------------------------------------------------------------


def test_preferences_are_saved(app: Flask) -> None:
    user = make_user()
    client = app.test_client()
    login(client, "ada@example.com", PASSWORD)
    defaults = db.session.get(UserPreferences, user.id)
    assert defaults is not None
    assert (defaults.email_when_ready, defaults.play_sound_when_ready, defaults.theme) == (
        True,
        False,
        "system",
    )

    response = post(
        client,
        "/account/preferences",
        {"preferences-play_sound_when_ready": "y", "preferences-theme": "dark"},
    )
    db.session.expire_all()
    saved = db.session.get(UserPreferences, user.id)
    page = client.get("/account").text

    assert response.status_code == 302
    assert saved is not None
    assert (saved.email_when_ready, saved.play_sound_when_ready, saved.theme) == (
        False,
        True,
        "dark",
    )
    assert re.search(r'<option[^>]*selected[^>]*value="dark"|value="dark"[^>]*selected', page)
    assert db.session.scalar(select(User.id).where(User.id == user.id)) == user.id
