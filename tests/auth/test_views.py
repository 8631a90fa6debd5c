"""Accounts through the browser: registration, sign-in, reset, account page, invites."""

from __future__ import annotations

import contextlib
import logging
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session as OrmSession

from set2tracks import create_app
from set2tracks.auth import limits, services
from set2tracks.auth.models import ApiToken, Invite, User, UserPreferences
from set2tracks.extensions import db, rate_limit_key
from set2tracks.queues import inline_runner
from tests.auth.helpers import (
    NEW_PASSWORD,
    PASSWORD,
    csrf_token,
    login,
    make_user,
    meeting_before_update,
    outbox,
    post,
    session_cookie,
    sign_in,
    signed_in_as,
)
from tests.backends import Backends
from tests.conftest import base_config
from tests.factories import DjSetFactory

# --- registration --------------------------------------------------------------------------


def _emailed_link(app: Flask, path: str) -> str:
    assert inline_runner().join(timeout=10)
    message = outbox(app)[-1]
    match = re.search(rf"https?://[^/\s]+({path}\S+)", message.text)
    assert match is not None, message.text
    return match.group(1)


def test_registration_creates_the_account_once_its_email_is_confirmed(
    app: Flask, client: FlaskClient
) -> None:
    outbox(app).clear()
    response = post(
        client,
        "/register",
        {"email": "Ada@Example.com", "display_name": "Ada", "password": PASSWORD},
    )
    before_confirming = login(app.test_client(), "ada@example.com", PASSWORD)
    link = _emailed_link(app, "/register/confirm")
    page = client.get(link)
    confirmed = post(client, link, {"password": PASSWORD})

    assert response.status_code == 200
    assert "Check your inbox" in response.text
    assert outbox(app)[-1].to == "Ada@Example.com"
    assert before_confirming.status_code == 401
    assert page.status_code == 200
    assert confirmed.status_code == 302
    user = services.find_user_by_email("ada@example.com")
    assert user is not None
    assert user.password_hash.startswith("scrypt:")
    assert PASSWORD not in user.password_hash
    assert db.session.get(UserPreferences, user.id) is not None
    assert signed_in_as(client) == "Ada@Example.com"
    assert post(app.test_client(), link).status_code == 400


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("not-an-email", PASSWORD, "Enter a valid email address."),
        ("x" * 250 + "@example.com", PASSWORD, "at most 254 characters"),
        ("bob@example.com", "short pass", "at least 12 characters"),
        ("bob@example.com", "p" * 129, "at most 128 characters"),
        ("bob@example.com", "Password1234!", "too easy to guess"),
    ],
)
def test_registration_refuses_bad_input_with_a_message(
    client: FlaskClient, email: str, password: str, message: str
) -> None:
    make_user()
    before = db.session.scalar(select(func.count()).select_from(User))

    response = post(
        client, "/register", {"email": email, "display_name": "Bob", "password": password}
    )

    assert response.status_code == 400
    assert message in response.text
    assert db.session.scalar(select(func.count()).select_from(User)) == before


def test_registration_does_not_tell_whether_an_email_has_an_account(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = make_user()
    old_hash = owner.password_hash
    hashed: list[str] = []
    real_hash = services.hash_password
    monkeypatch.setattr(services, "hash_password", lambda p: hashed.append(p) or real_hash(p))
    outbox(app).clear()
    form = {"display_name": "Eve", "password": "an attacker passphrase 42"}

    taken = post(client, "/register", {**form, "email": "ADA@example.com"})
    fresh = post(client, "/register", {**form, "email": "newcomer@example.com"})
    assert inline_runner().join(timeout=10)

    def without_email(text: str) -> str:
        text = re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "", text)
        return text.replace("ADA@example.com", "").replace("newcomer@example.com", "")

    assert taken.status_code == fresh.status_code == 200
    assert without_email(taken.text) == without_email(fresh.text)
    assert len(hashed) == 2  # the password is hashed for a taken address too
    db.session.refresh(owner)
    assert owner.password_hash == old_hash
    mails = {message.to: message for message in outbox(app)}
    assert "already has one" in mails["ada@example.com"].text
    assert "/register/confirm?token=" not in mails["ada@example.com"].text
    assert "/register/confirm?token=" in mails["newcomer@example.com"].text


def _links_in_outbox(app: Flask, email: str) -> list[str]:
    assert inline_runner().join(timeout=10)
    return [
        match.group(1)
        for message in outbox(app)
        if message.to == email
        for match in re.finditer(r"https?://[^/\s]+(/register/confirm\S+)", message.text)
    ]


def test_the_victim_confirms_choosing_their_password_after_an_attacker_re_registers(
    app: Flask,
) -> None:
    """Review 2, number 4: a re-registration neither kills the link nor sets the password."""
    form = {"email": "vic@example.com", "display_name": "Vic"}
    attacker_password = "attackers own passphrase 7"
    victim, attacker = app.test_client(), app.test_client()
    outbox(app).clear()
    post(victim, "/register", {**form, "password": PASSWORD})
    first_link = _emailed_link(app, "/register/confirm")
    again = post(attacker, "/register", {**form, "password": attacker_password})

    page = victim.get(first_link)
    confirmed = post(victim, first_link, {"password": PASSWORD})

    assert again.status_code == 200
    assert "Check your inbox" in again.text  # the same answer as any registration
    assert page.status_code == 200
    assert "Choose your password" in page.text
    assert confirmed.status_code == 302
    assert signed_in_as(victim) == "vic@example.com"
    assert login(app.test_client(), "vic@example.com", PASSWORD).status_code == 302
    assert login(attacker, "vic@example.com", attacker_password).status_code == 401
    # The link worked once: the account is confirmed, a second use is refused.
    assert (
        post(app.test_client(), first_link, {"password": "another passphrase 99"}).status_code
        == 400
    )


def test_registering_again_sends_at_most_one_link_per_10_minutes_and_keeps_the_first(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    form = {"email": "vic@example.com", "display_name": "Vic"}
    outbox(app).clear()
    post(app.test_client(), "/register", {**form, "password": PASSWORD})
    for n in range(5):
        post(app.test_client(), "/register", {**form, "password": f"squatter passphrase {n}x"})
    within_ten_minutes = _links_in_outbox(app, "vic@example.com")
    later = services.utcnow() + timedelta(minutes=11)
    monkeypatch.setattr(services, "utcnow", lambda: later)
    post(app.test_client(), "/register", {**form, "password": "squatter passphrase 9x"})
    monkeypatch.undo()
    links = _links_in_outbox(app, "vic@example.com")

    assert len(within_ten_minutes) == 1
    assert len(links) == 2
    victim = app.test_client()
    assert victim.get(links[0]).status_code == 200  # the first link still works
    assert post(victim, links[0], {"password": NEW_PASSWORD}).status_code == 302
    assert signed_in_as(victim) == "vic@example.com"


def test_a_squatter_who_registered_first_cannot_keep_the_owner_out(app: Flask) -> None:
    form = {"email": "own@example.com", "display_name": "Own"}
    squatter_password = "squatters passphrase 1"
    outbox(app).clear()
    post(app.test_client(), "/register", {**form, "password": squatter_password})
    owner = app.test_client()
    post(owner, "/register", {**form, "password": PASSWORD})

    links = _links_in_outbox(app, "own@example.com")
    confirmed = post(owner, links[-1], {"password": PASSWORD})

    assert confirmed.status_code == 302
    assert signed_in_as(owner) == "own@example.com"
    assert login(app.test_client(), "own@example.com", squatter_password).status_code == 401
    assert login(app.test_client(), "own@example.com", PASSWORD).status_code == 302


def test_confirmation_checks_the_chosen_password_and_keeps_the_link_working(
    app: Flask, client: FlaskClient
) -> None:
    outbox(app).clear()
    post(
        client,
        "/register",
        {"email": "bob@example.com", "display_name": "Bob", "password": PASSWORD},
    )
    link = _emailed_link(app, "/register/confirm")

    weak = post(client, link, {"password": "Password1234!"})
    good = post(client, link, {"password": NEW_PASSWORD})

    assert weak.status_code == 400
    assert "too easy to guess" in weak.text
    assert good.status_code == 302
    assert services.authenticate("bob@example.com", NEW_PASSWORD) is not None


def test_an_expired_waiting_registration_may_be_replaced(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    form = {"email": "old@example.com"}
    outbox(app).clear()
    post(app.test_client(), "/register", {**form, "display_name": "Squat", "password": PASSWORD})
    old_link = _emailed_link(app, "/register/confirm")
    user = services.find_user_by_email("old@example.com")
    assert user is not None
    user.confirmation_sent_at = services.utcnow() - timedelta(days=3)
    db.session.commit()

    post(app.test_client(), "/register", {**form, "display_name": "Owner", "password": PASSWORD})
    new_link = _emailed_link(app, "/register/confirm")

    assert new_link != old_link
    assert post(app.test_client(), old_link, {"password": PASSWORD}).status_code == 400
    owner = app.test_client()
    assert post(owner, new_link, {"password": PASSWORD}).status_code == 302
    db.session.refresh(user)
    assert user.display_name == "Owner"


def test_registration_without_csrf_token_is_400(client: FlaskClient) -> None:
    response = client.post(
        "/register", data={"email": "bob@example.com", "display_name": "Bob", "password": PASSWORD}
    )

    assert response.status_code == 400
    assert services.find_user_by_email("bob@example.com") is None


@pytest.fixture
def invite_only(app: Flask) -> Any:
    app.config["SIGNUP_MODE"] = "invite"
    yield
    app.config["SIGNUP_MODE"] = "open"


def test_invite_mode_needs_a_valid_unused_invite(
    app: Flask, client: FlaskClient, invite_only: Any
) -> None:
    admin = make_user("admin@example.com", is_admin=True)
    issued = services.create_invite(admin.id, email=None, days=7)
    form = {"display_name": "Bob", "password": PASSWORD}

    without = post(client, "/register", {**form, "email": "bob@example.com"})
    page = client.get(f"/invite/{issued.secret}")
    first = post(client, "/register", {**form, "email": "bob@example.com", "invite": issued.secret})
    again = post(client, "/register", {**form, "email": "eve@example.com", "invite": issued.secret})

    assert without.status_code == 403
    assert issued.secret in page.text
    assert first.status_code == 200
    assert "Check your inbox" in first.text
    assert again.status_code == 400
    assert "This invite is not valid" in again.text
    assert services.find_user_by_email("eve@example.com") is None
    invite = db.session.get(Invite, issued.id)
    assert invite is not None
    assert invite.used_by_id == services.find_user_by_email("bob@example.com").id  # type: ignore[union-attr]


def test_an_invite_bound_to_an_email_serves_only_that_email(
    client: FlaskClient, invite_only: Any
) -> None:
    admin = make_user("admin@example.com", is_admin=True)
    issued = services.create_invite(admin.id, email="bob@example.com", days=7)
    form = {"display_name": "Bob", "password": PASSWORD, "invite": issued.secret}

    prefilled = client.get(f"/invite/{issued.secret}")
    other = post(client, "/register", {**form, "email": "eve@example.com"})
    unused = db.session.get(Invite, issued.id).used_at  # type: ignore[union-attr]
    bound = post(client, "/register", {**form, "email": "Bob@example.com"})

    assert 'value="bob@example.com"' in prefilled.text
    assert other.status_code == 400
    assert services.find_user_by_email("eve@example.com") is None
    assert unused is None
    # The link came to that very address: it proves the email, so no confirmation round.
    assert bound.status_code == 302
    assert signed_in_as(client) == "Bob@example.com"


def test_a_made_up_invite_is_refused_before_the_email_is_looked_at(
    client: FlaskClient, invite_only: Any
) -> None:
    make_user()
    form = {"display_name": "Eve", "password": PASSWORD, "invite": "made-up-invite-code"}

    taken = post(client, "/register", {**form, "email": "ada@example.com"})
    fresh = post(client, "/register", {**form, "email": "nobody@example.com"})

    assert taken.status_code == fresh.status_code == 400
    assert "This invite is not valid" in taken.text

    def without_token(text: str) -> str:
        return re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "", text)

    assert without_token(taken.text).replace("ada@", "") == without_token(fresh.text).replace(
        "nobody@", ""
    )


@pytest.mark.parametrize("spoiled", ["expired", "revoked"])
def test_an_expired_or_revoked_invite_is_refused(
    app: Flask, client: FlaskClient, invite_only: Any, spoiled: str
) -> None:
    admin = make_user("admin@example.com", is_admin=True)
    issued = services.create_invite(admin.id, email="bob@example.com", days=1)
    if spoiled == "revoked":
        services.revoke_invite(issued.id)
    else:
        invite = db.session.get(Invite, issued.id)
        assert invite is not None
        invite.expires_at = services.utcnow() - timedelta(seconds=1)
        db.session.commit()

    page = client.get(f"/invite/{issued.secret}")
    response = post(
        client,
        "/register",
        {
            "email": "bob@example.com",
            "display_name": "Bob",
            "password": PASSWORD,
            "invite": issued.secret,
        },
    )

    assert "This invite is not valid" in page.text
    assert response.status_code == 400
    assert "This invite is not valid" in response.text
    assert services.find_user_by_email("bob@example.com") is None


def test_closed_registration(client: FlaskClient, app: Flask) -> None:
    app.config["SIGNUP_MODE"] = "closed"
    try:
        response = post(
            client,
            "/register",
            {"email": "bob@example.com", "display_name": "Bob", "password": PASSWORD},
        )
    finally:
        app.config["SIGNUP_MODE"] = "open"

    assert response.status_code == 403
    assert services.find_user_by_email("bob@example.com") is None


@pytest.mark.postgres
@pytest.mark.committing
def test_two_people_racing_for_one_invite_get_one_account(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both registrations have checked the invite before either writes to it."""
    import threading

    with app.app_context():
        admin = make_user("admin@example.com", is_admin=True)
        code = services.create_invite(admin.id, email=None, days=7).secret
    app.config["SIGNUP_MODE"] = "invite"
    outcomes: list[str] = []

    def register(email: str) -> None:
        with app.app_context():
            try:
                services.register(email, "Racer", PASSWORD, code)
                outcomes.append("created")
            except services.InvalidInput:  # type: ignore[attr-defined]
                outcomes.append("refused")

    try:
        with app.app_context(), meeting_before_update("invites"):
            threads = [
                threading.Thread(target=register, args=(f"racer{n}@example.com",)) for n in range(2)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
    finally:
        app.config["SIGNUP_MODE"] = "open"

    with app.app_context():
        racers = db.session.scalar(
            select(func.count()).select_from(User).where(User.email.like("racer%"))
        )
    assert sorted(outcomes) == ["created", "refused"]
    assert racers == 1


# --- sign-in -------------------------------------------------------------------------------


def test_sign_in_rotates_the_session_id(app: Flask, client: FlaskClient) -> None:
    make_user()
    client.get("/login")
    planted = session_cookie(app, client)
    attacker = app.test_client()
    attacker.set_cookie(app.config["SESSION_COOKIE_NAME"], planted or "")

    response = login(client, "ADA@example.com", PASSWORD)

    assert response.status_code == 302
    assert session_cookie(app, client) != planted
    assert signed_in_as(client) == "ada@example.com"
    assert signed_in_as(attacker) is None
    assert services.find_user_by_email("ada@example.com").last_login_at is not None  # type: ignore[union-attr]


def test_wrong_password_and_unknown_email_look_the_same(client: FlaskClient) -> None:
    make_user()

    wrong = login(client, "ada@example.com", "not the right password")
    unknown = login(client, "nobody@example.com", "not the right password")

    def without_token(text: str) -> str:
        text = re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "", text)
        return re.sub(r'value="[^"]*@example.com"', "", text)

    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password." in wrong.text
    assert without_token(wrong.text) == without_token(unknown.text)


def test_remember_me_cookie_is_hardened_and_bounded(app: Flask, client: FlaskClient) -> None:
    make_user()

    response = login(client, "ada@example.com", PASSWORD, remember="y")

    remember = next(
        cookie
        for cookie in response.headers.getlist("Set-Cookie")
        if cookie.startswith(app.config["REMEMBER_COOKIE_NAME"] + "=")
    )
    assert "HttpOnly" in remember
    assert "SameSite=Lax" in remember
    assert app.config["REMEMBER_COOKIE_DURATION"].days <= 30


def test_safe_redirects_after_sign_in(client: FlaskClient) -> None:
    make_user()
    targets = {
        "https://evil.example": "/",
        "//evil.example": "/",
        "/\\evil.example": "/",
        "https:evil.example": "/",
        "javascript:alert(1)": "/",
        "/sets/42": "/sets/42",
    }
    for target, landing in targets.items():
        client.post("/logout", data={"csrf_token": csrf_token(client)})
        token = csrf_token(client)
        response = client.post(
            "/login",
            query_string={"next": target},
            data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token},
        )
        assert response.status_code == 302
        assert response.headers["Location"] == landing, target


def test_logout_is_post_only_and_ends_the_session(app: Flask, client: FlaskClient) -> None:
    make_user()
    login(client, "ada@example.com", PASSWORD)
    old = session_cookie(app, client)
    replay = app.test_client()
    replay.set_cookie(app.config["SESSION_COOKIE_NAME"], old or "")

    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400  # no CSRF token
    assert signed_in_as(client) == "ada@example.com"
    assert post(client, "/logout").status_code == 302
    assert signed_in_as(client) is None
    assert signed_in_as(replay) is None


@pytest.fixture
def limited_app(backends: Backends, tmp_path: Path) -> Flask:
    return create_app(
        base_config(backends, tmp_path, RATELIMIT_ENABLED=True, MAIL_BACKEND="memory")
    )


def test_sixth_failed_sign_in_within_15_minutes_is_429(limited_app: Flask) -> None:
    client = limited_app.test_client()
    with limited_app.app_context():
        make_user()

    statuses = [
        login(client, "ada@example.com", f"wrong password {n}").status_code for n in range(6)
    ]
    right = login(client, "ada@example.com", PASSWORD)

    assert statuses == [401] * 5 + [429]
    assert right.status_code == 429
    assert int(right.headers["Retry-After"]) > 0


def test_failures_from_one_address_do_not_lock_the_owner_out(limited_app: Flask) -> None:
    with limited_app.app_context():
        make_user()
    attacker = limited_app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "198.51.100.66"
    owner = limited_app.test_client()
    owner.environ_base["REMOTE_ADDR"] = "203.0.113.5"

    statuses = [login(attacker, "ada@example.com", f"guess {n}").status_code for n in range(6)]
    right_from_attacker = login(attacker, "ada@example.com", PASSWORD)
    right_from_owner = login(owner, "ada@example.com", PASSWORD)

    assert statuses == [401] * 5 + [429]
    assert right_from_attacker.status_code == 429
    assert right_from_owner.status_code == 302


def test_one_address_failing_against_many_accounts_is_limited(limited_app: Flask) -> None:
    client = limited_app.test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.7"

    statuses = [
        login(client, f"victim{n}@example.com", "a guessed password").status_code for n in range(21)
    ]

    assert statuses == [401] * 20 + [429]


def _from(app: Flask, address: str) -> FlaskClient:
    """A new browser at ``address``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


@pytest.fixture
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any request that would hold its worker thread asleep."""

    def refuse(seconds: float) -> None:
        raise AssertionError(f"a request slept {seconds} s")

    monkeypatch.setattr(time, "sleep", refuse)


def _spread_out_guessing(app: Flask, email: str = "ada@example.com") -> list[int]:
    """14 addresses x 6 wrong passwords: each address spends its own budget of 5."""
    statuses = []
    for address in range(14):
        client = _from(app, f"198.51.100.{address}")
        statuses += [login(client, email, f"guess {n}").status_code for n in range(6)]
    return statuses


def test_failures_spread_over_addresses_close_the_account_to_new_browsers_at_once(
    limited_app: Flask, no_sleeping: None
) -> None:
    """Review 2, number 2: past 50 failures a new browser gets a 429 offering the reset."""
    with limited_app.app_context():
        make_user()

    statuses = _spread_out_guessing(limited_app)
    owner = login(_from(limited_app, "203.0.113.5"), "ada@example.com", PASSWORD)

    # 10 addresses spend their 5 each (50), the rest are refused without a password check.
    assert statuses[:60] == ([401] * 5 + [429]) * 10
    assert statuses[60:] == [429] * 24
    assert owner.status_code == 429
    assert int(owner.headers["Retry-After"]) > 0
    page = owner.get_data(as_text=True)
    assert "Too many failed sign-ins to this account recently" in page
    assert "reset your password by email" in page


def test_the_owners_known_browser_signs_in_past_the_account_cap(
    limited_app: Flask, no_sleeping: None
) -> None:
    with limited_app.app_context():
        user_id = make_user().id
    owner = _from(limited_app, "203.0.113.5")
    assert login(owner, "ada@example.com", PASSWORD).status_code == 302
    device = owner.get_cookie(limited_app.config["DEVICE_COOKIE_NAME"])
    other = _from(limited_app, "203.0.113.6")
    assert login(other, "ada@example.com", PASSWORD).status_code == 302
    other_device = other.get_cookie(limited_app.config["DEVICE_COOKIE_NAME"])
    post(owner, "/logout")
    _spread_out_guessing(limited_app)

    assert login(owner, "ada@example.com", PASSWORD).status_code == 302
    # A password changed in this browser keeps it known (its cookie follows the password).
    csrf = csrf_token(owner)
    changed = owner.post(
        "/account/password",
        data={
            "password-current_password": PASSWORD,
            "password-new_password": NEW_PASSWORD,
            "password-revoke_tokens": "y",
            "csrf_token": csrf,
        },
    )
    assert changed.status_code == 302
    post(owner, "/logout")
    assert login(owner, "ada@example.com", NEW_PASSWORD).status_code == 302
    # A copy of the old cookie named the old password: it no longer skips the cap.
    stale = _from(limited_app, "203.0.113.7")
    assert device is not None
    stale.set_cookie(limited_app.config["DEVICE_COOKIE_NAME"], device.value)
    assert login(stale, "ada@example.com", NEW_PASSWORD).status_code == 429
    assert other_device is not None
    assert device.value != other_device.value  # each browser its own cookie
    with limited_app.app_context():
        assert services.authenticate("ada@example.com", NEW_PASSWORD) is not None
        assert db.session.get(User, user_id) is not None


def test_a_password_reset_lets_the_owner_in_from_a_new_browser_at_once(
    limited_app: Flask, no_sleeping: None
) -> None:
    with limited_app.app_context():
        make_user()
    _spread_out_guessing(limited_app)
    owner = _from(limited_app, "203.0.113.5")
    assert login(owner, "ada@example.com", PASSWORD).status_code == 429

    assert post(owner, "/reset-password", {"email": "ada@example.com"}).status_code == 200
    with limited_app.app_context():
        link = _reset_link(limited_app)
    assert post(owner, link, {"password": NEW_PASSWORD}).status_code == 302

    assert login(owner, "ada@example.com", NEW_PASSWORD).status_code == 302
    # The failures are forgiven: another new browser of the owner gets in too.
    laptop = _from(limited_app, "203.0.113.9")
    assert login(laptop, "ada@example.com", NEW_PASSWORD).status_code == 302


def test_failures_for_a_made_up_email_never_hold_back_real_accounts(
    limited_app: Flask, no_sleeping: None
) -> None:
    with limited_app.app_context():
        make_user()
    statuses = _spread_out_guessing(limited_app, "nobody-here@example.com")
    # Each address still spends its own budget for that email, nothing more.
    assert statuses == ([401] * 5 + [429]) * 14

    statuses = [
        login(
            _from(limited_app, f"203.0.{n // 200}.{n % 200}"), "ada@example.com", PASSWORD
        ).status_code
        for n in range(52)
    ]

    assert statuses == [302] * 52


def test_ipv6_addresses_are_budgeted_by_their_64(limited_app: Flask, no_sleeping: None) -> None:
    with limited_app.app_context():
        make_user()
    same_64 = [_from(limited_app, f"2001:db8:0:1::{n:x}") for n in range(1, 7)]
    other_64 = _from(limited_app, "2001:db8:0:2::1")

    statuses = [login(client, "ada@example.com", "a guess").status_code for client in same_64]
    elsewhere = login(other_64, "ada@example.com", "a guess")

    assert statuses == [401] * 5 + [429]
    assert elsewhere.status_code == 401


def test_anonymous_visitors_share_the_site_budget_of_their_ipv6_64(app: Flask) -> None:
    keys = set()
    for address in ("2001:db8:0:1::1", "2001:db8:0:1:ffff::2", "2001:db8:0:2::1", "192.0.2.7"):
        with app.test_request_context("/", environ_base={"REMOTE_ADDR": address}):
            keys.add(rate_limit_key())

    assert keys == {"ip:2001:db8:0:1::/64", "ip:2001:db8:0:2::/64", "ip:192.0.2.7"}


@pytest.mark.committing
def test_parallel_wrong_passwords_get_no_more_than_five_tries(
    limited_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from set2tracks.auth import passwords

    with limited_app.app_context():
        make_user()
    checked: list[str] = []
    real_check = passwords.check_password_hash

    # Every request that gets to the password check waits there for all 16: a limit that
    # counts only after the check lets all of them in; one that counts first, 5 (who wait
    # for the others in vain, then go on).
    gate = threading.Barrier(16)

    def counted(stored: str, password: str) -> bool:
        checked.append(password)
        with contextlib.suppress(threading.BrokenBarrierError):
            gate.wait(timeout=2)
        return real_check(stored, password)

    monkeypatch.setattr(passwords, "check_password_hash", counted)
    clients = [limited_app.test_client() for _ in range(16)]
    tokens = [csrf_token(client) for client in clients]
    barrier = threading.Barrier(16)
    statuses: list[int] = []

    def attempt(n: int) -> None:
        barrier.wait(timeout=10)
        response = clients[n].post(
            "/login",
            data={"email": "ada@example.com", "password": f"guess {n}", "csrf_token": tokens[n]},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [401] * 5 + [429] * 11
    assert len(checked) == 5


# --- password reset ------------------------------------------------------------------------


def _reset_link(app: Flask) -> str:
    assert inline_runner().join(timeout=10)
    message = outbox(app)[-1]
    match = re.search(r"https?://\S+/reset-password/(\S+)", message.text)
    assert match is not None
    return f"/reset-password/{match.group(1)}"


def test_password_reset_by_email_works_once(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    outbox(app).clear()

    sent = post(client, "/reset-password", {"email": "ADA@example.com"})
    link = _reset_link(app)
    first = post(client, link, {"password": NEW_PASSWORD})
    second = post(client, link, {"password": "yet another passphrase 99"})

    assert sent.status_code == 200
    assert outbox(app)[-1].to == "ada@example.com"
    assert first.status_code == 302
    assert second.status_code == 400
    assert "expired or was already used" in second.text
    db.session.refresh(user)
    assert services.authenticate("ada@example.com", NEW_PASSWORD) is not None


def test_reset_link_dies_when_the_password_changes(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    token = services.make_reset_token(user)
    services.change_password(user.id, PASSWORD, NEW_PASSWORD)

    response = client.get(f"/reset-password/{token}")

    assert response.status_code == 400


def test_reset_link_expires(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    token = services.make_reset_token(user)
    app.config["PASSWORD_RESET_MAX_AGE"] = -1
    try:
        response = client.get(f"/reset-password/{token}")
    finally:
        app.config["PASSWORD_RESET_MAX_AGE"] = 30 * 60

    assert response.status_code == 400


def test_reset_request_says_the_same_for_unknown_addresses(app: Flask, client: FlaskClient) -> None:
    make_user()
    outbox(app).clear()

    known = post(client, "/reset-password", {"email": "ada@example.com"})
    unknown = post(client, "/reset-password", {"email": "nobody@example.com"})
    assert inline_runner().join(timeout=10)

    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text
    assert [message.to for message in outbox(app)] == ["ada@example.com"]


# --- account page --------------------------------------------------------------------------


def test_changing_the_password_needs_the_current_one_and_ends_other_sessions(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user()
    other_device = app.test_client()
    login(client, "ada@example.com", PASSWORD)
    login(other_device, "ada@example.com", PASSWORD)
    old_hash = user.password_hash

    wrong = post(
        client,
        "/account/password",
        {"password-current_password": "not my password!", "password-new_password": NEW_PASSWORD},
    )
    db.session.refresh(user)
    assert wrong.status_code == 400
    assert "current password is not right" in wrong.text
    assert user.password_hash == old_hash

    right = post(
        client,
        "/account/password",
        {"password-current_password": PASSWORD, "password-new_password": NEW_PASSWORD},
    )

    assert right.status_code == 302
    assert signed_in_as(client) == "ada@example.com"
    assert signed_in_as(other_device) is None


def test_tokens_from_the_account_page_authenticate_the_api(app: Flask, client: FlaskClient) -> None:
    make_user()
    login(client, "ada@example.com", PASSWORD)

    created = post(client, "/account/tokens", {"token-name": "laptop"})
    token = re.search(r'<code class="secret">(s2t_[^<]+)</code>', created.text)
    assert created.status_code == 201
    assert token is not None
    api = app.test_client()
    bearer = {"Authorization": f"Bearer {token.group(1)}"}
    assert api.get("/api/v1/me", headers=bearer).json["email"] == "ada@example.com"
    stored = db.session.scalars(select(ApiToken)).one()
    assert token.group(1) not in stored.token_hash
    assert stored.last_used_at is not None
    assert token.group(1) not in client.get("/account").text

    post(client, f"/account/tokens/{stored.id}/revoke")
    revoked = api.get("/api/v1/me", headers=bearer)

    assert revoked.status_code == 401
    assert revoked.mimetype == "application/problem+json"


def test_api_token_requests_need_no_csrf_token_but_cannot_mint_tokens(app: Flask) -> None:
    user = make_user()
    value = services.create_api_token(user.id, "script").secret
    api = app.test_client()
    bearer = {"Authorization": f"Bearer {value}"}

    me = api.get("/api/v1/me", headers=bearer)
    revoked = api.delete(
        f"/api/v1/me/tokens/{services.create_api_token(user.id, 'x').id}", headers=bearer
    )
    minted = api.post("/api/v1/me/tokens", json={"name": "second"}, headers=bearer)
    unknown = api.get("/api/v1/me", headers={"Authorization": "Bearer s2t_unknown"})

    assert me.status_code == 200
    assert revoked.status_code == 204
    assert minted.status_code == 403
    assert minted.mimetype == "application/problem+json"
    assert [token.name for token in services.list_api_tokens(user.id)] == ["script"]
    assert unknown.status_code == 401
    assert unknown.headers["WWW-Authenticate"].startswith("Bearer")


def test_someone_elses_token_cannot_be_revoked(app: Flask) -> None:
    owner = make_user()
    other = make_user("bob@example.com")
    token_id = services.create_api_token(owner.id, "mine").id
    bobs = services.create_api_token(other.id, "bob").secret

    response = app.test_client().delete(
        f"/api/v1/me/tokens/{token_id}", headers={"Authorization": f"Bearer {bobs}"}
    )

    assert response.status_code == 404
    assert db.session.get(ApiToken, token_id).revoked_at is None  # type: ignore[union-attr]


def test_deleting_the_account_keeps_its_sets(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    dj_set = DjSetFactory(submitted_by=user)
    db.session.commit()
    login(client, "ada@example.com", PASSWORD)

    refused = post(client, "/account/delete", {"delete-password": "not my password!"})
    deleted = post(client, "/account/delete", {"delete-password": PASSWORD})

    assert refused.status_code == 400
    assert deleted.status_code == 302
    assert services.find_user_by_email("ada@example.com") is None
    db.session.expire_all()
    assert db.session.get(type(dj_set), dj_set.id).submitted_by_id is None  # type: ignore[union-attr]


# --- admin ---------------------------------------------------------------------------------


def test_invites_are_for_admins(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    admin = make_user("admin@example.com", is_admin=True)

    anonymous = app.test_client().get("/admin/invites")
    sign_in(client, user)
    refused = client.get("/admin/invites")
    sign_in(client, admin)
    created = post(client, "/admin/invites", {"email": "", "days": "7"})

    assert anonymous.status_code == 302
    assert "/login" in anonymous.headers["Location"]
    assert refused.status_code == 403
    assert created.status_code == 201
    link = re.search(r'<code class="secret">(http[^<]+/invite/([^<]+))</code>', created.text)
    assert link is not None
    assert len(link.group(2)) >= 22
    invite = db.session.scalars(select(Invite)).one()
    assert invite.code_hash != link.group(2)
    assert link.group(2) not in client.get("/admin/invites").text


def test_no_credential_of_the_auth_flows_reaches_the_logs(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Run every flow that handles a secret, then scan what our handler would write."""
    password = "canary passphrase for the log scan"
    with caplog.at_level(logging.DEBUG):
        outbox(app).clear()
        post(
            client,
            "/register",
            {"email": "log@example.com", "display_name": "Log", "password": password},
        )
        confirm_link = _emailed_link(app, "/register/confirm")
        client.get(confirm_link)
        post(client, confirm_link, {"password": password})
        created = post(client, "/account/tokens", {"token-name": "canary"})
        api_token = re.search(r'<code class="secret">(s2t_[^<]+)</code>', created.text)
        assert api_token is not None
        app.test_client().get(
            "/api/v1/me", headers={"Authorization": f"Bearer {api_token.group(1)}"}
        )
        app.test_client().get("/api/v1/me", headers={"Authorization": "Bearer s2t_canary_unknown"})
        post(client, "/logout")
        login(client, "log@example.com", "canary wrong passphrase")
        outbox(app).clear()
        post(client, "/reset-password", {"email": "log@example.com"})
        reset_link = _reset_link(app)
        session_id = session_cookie(app, client)

    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "set2tracks")
    written = "\n".join(
        handler.format(record) for record in caplog.records if handler.filter(record)
    )
    secrets = {
        "password": password,
        "wrong password": "canary wrong passphrase",
        "API token": api_token.group(1),
        "unknown token": "s2t_canary_unknown",
        "reset token": reset_link.rsplit("/", 1)[1],
        "confirmation token": confirm_link.split("token=", 1)[1],
        "session id": session_id or "no session",
        "secret key": app.config["SECRET_KEY"],
    }
    assert written
    for name, secret in secrets.items():
        assert secret not in written, f"the {name} reached the logs"


class _BrokenStorage:
    """A limiter whose storage (Redis) is unreachable."""

    enabled = True

    @property
    def limiter(self) -> Any:
        raise RedisConnectionError("Connection refused")


def test_an_unreachable_limiter_storage_keeps_sign_in_open_and_is_logged_as_an_error(
    limited_app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with limited_app.app_context():
        make_user()
    client = limited_app.test_client()
    token = csrf_token(client)
    monkeypatch.setattr(limits, "limiter", _BrokenStorage())

    with caplog.at_level(logging.WARNING, logger="set2tracks.auth.limits"):
        wrong = client.post(
            "/login", data={"email": "ada@example.com", "password": "a guess", "csrf_token": token}
        )
        right = login(client, "ada@example.com", PASSWORD)

    assert wrong.status_code == 401
    assert right.status_code == 302
    outages = [r for r in caplog.records if "sign-in limits unavailable" in r.getMessage()]
    assert outages
    assert {record.levelno for record in outages} == {logging.ERROR}


def test_a_sign_in_with_keep_me_signed_in_commits_once(app: Flask, client: FlaskClient) -> None:
    """The remember token and the sign-in time are written together, or neither is."""
    make_user()
    token = csrf_token(client)
    commits: list[object] = []

    def count(session: object) -> None:
        commits.append(session)

    event.listen(OrmSession, "after_commit", count)
    try:
        response = client.post(
            "/login",
            data={
                "email": "ada@example.com",
                "password": PASSWORD,
                "remember": "y",
                "csrf_token": token,
            },
        )
    finally:
        event.remove(OrmSession, "after_commit", count)

    assert response.status_code == 302
    assert client.get_cookie(app.config["REMEMBER_COOKIE_NAME"]) is not None
    assert len(commits) == 1
    user = services.find_user_by_email("ada@example.com")
    assert user is not None
    assert user.last_login_at is not None
    assert user.remember_token is not None
