"""Who may reach what: a sweep over every route of ``app.url_map`` as three people.

Every endpoint must be classified below; a new route fails this test until it is. Public
routes answer everyone; ``user`` routes send anonymous visitors to sign in (401 on the API);
``admin`` routes refuse signed-in non-admins with 403. Hidden and unpublished sets stay
hidden from everyone, and no GET changes a single row.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from set2tracks.auth.services import (
    create_api_token,
    create_invite,
    make_confirmation_token,
    make_reset_token,
)
from set2tracks.extensions import db
from tests.auth.helpers import csrf_token, sign_in
from tests.factories import DjSetFactory, SubmissionFactory, TrackFactory, UserFactory

PUBLIC, USER, ADMIN = "public", "user", "admin"
ACCESS = {
    "static": PUBLIC,
    "health.healthz": PUBLIC,
    "health.readyz": PUBLIC,
    "health.health": ADMIN,  # or a monitor with HEALTH_TOKEN (tests/health)
    "sets.index": PUBLIC,
    "sets.detail": PUBLIC,
    "tracks.index": PUBLIC,
    "tracks.detail": PUBLIC,
    "sets.publish": USER,
    "sets.unpublish": USER,
    "sets.submit": USER,
    "sets.submit_upload": USER,
    "sets.submissions": USER,
    "sets.submission": USER,
    "sets.queue": ADMIN,
    "sets.retry": ADMIN,
    "sets.cancel": ADMIN,
    "sets_api.list_sets": PUBLIC,
    "sets_api.get_set": PUBLIC,
    "sets_api.publish_set": USER,
    "sets_api.unpublish_set": USER,
    "submissions_api.create_submission": USER,
    "submissions_api.list_submissions": USER,
    "submissions_api.get_submission": USER,
    "tracks_api.list_tracks": PUBLIC,
    "tracks_api.get_track": PUBLIC,
    "api-docs.openapi_json": PUBLIC,
    "docs.index": PUBLIC,
    "docs.asset": PUBLIC,
    "auth.login": PUBLIC,
    "auth.logout": PUBLIC,
    "auth.register": PUBLIC,
    "auth.invite": PUBLIC,
    "auth.reset_request": PUBLIC,
    "auth.reset_password": PUBLIC,
    "auth.confirm_email": PUBLIC,
    "auth.account": USER,
    "auth.change_password": USER,
    "auth.preferences": USER,
    "auth.create_token": USER,
    "auth.revoke_token": USER,
    "auth.delete_account": USER,
    "auth.sign_out_everywhere": USER,
    "auth.invites": ADMIN,
    "auth.revoke_invite": ADMIN,
    "me_api.me": USER,
    "me_api.list_tokens": USER,
    "me_api.create_token": USER,
    "me_api.revoke_token": USER,
}
ROLES = ("anonymous", USER, ADMIN)


def _expected(access: str, role: str, api: bool) -> set[int]:
    if access == PUBLIC:
        return {200, 302}  # /login and /register send signed-in people home
    if role == ADMIN or (access == USER and role == USER):
        return {200}
    if role == "anonymous":
        return {401} if api else {302}
    return {403}


def _url(rule: str, values: dict[str, Any]) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: str(values[m.group(1)]), rule)


def _row_counts() -> dict[str, int]:
    return {
        table.name: db.session.scalar(select(func.count()).select_from(table)) or 0
        for table in db.metadata.sorted_tables
    }


def test_every_route_is_classified(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}

    assert endpoints - set(ACCESS) == set(), "classify the new routes in ACCESS"
    assert set(ACCESS) - endpoints == set(), "ACCESS lists routes that no longer exist"


def _sweep_values(owner: Any) -> dict[str, Any]:
    """Path values that exist, so refusals come from access rules, not from 404s."""
    set_id, track_id = DjSetFactory().id, TrackFactory().id
    db.session.commit()  # token creation refuses to run with a caller's writes pending
    return {
        "set_id": set_id,
        "track_id": track_id,
        "token_id": create_api_token(owner.id, "sweep").id,
        "invite_id": create_invite(owner.id, email=None, days=7).id,
        "code": "not-a-real-invite-code",
        "token": make_reset_token(owner),
        # A registration still waiting for its email to be confirmed.
        "confirm_token": make_confirmation_token(UserFactory(email_confirmed_at=None)),
        "filename": "app.css",
        "submission_id": SubmissionFactory(user=owner).id,
    }


def _signed_in_client(app: Flask, role: str) -> tuple[FlaskClient, Any]:
    client = app.test_client()
    owner = UserFactory(is_admin=role == ADMIN)
    if role != "anonymous":
        sign_in(client, owner)
    db.session.commit()
    return client, owner


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_the_pages_it_may(app: Flask, role: str) -> None:
    client, owner = _signed_in_client(app, role)
    values = _sweep_values(owner)
    db.session.commit()
    before = _row_counts()

    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or set()):
            continue
        values["filename"] = "swagger-ui.css" if rule.endpoint == "docs.asset" else "app.css"
        url = _url(rule.rule, values)
        if rule.endpoint == "auth.confirm_email":
            url += f"?token={values['confirm_token']}"
        response = client.get(url)
        # /health answers machines like the API does: 401, not a redirect to sign in.
        machine = rule.rule.startswith("/api/") or rule.endpoint.startswith("health.")
        expected = _expected(ACCESS[rule.endpoint], role, machine)
        assert response.status_code in expected, f"{role} GET {url}: {response.status_code}"
        if response.status_code == 302 and ACCESS[rule.endpoint] != PUBLIC:
            assert "/login" in response.headers["Location"], url

    assert _row_counts() == before, "a GET changed the database"


@pytest.mark.parametrize("role", ROLES)
def test_state_changes_are_refused_to_whoever_may_not_make_them(app: Flask, role: str) -> None:
    client, owner = _signed_in_client(app, role)
    values = _sweep_values(owner)
    db.session.commit()

    for rule in app.url_map.iter_rules():
        access = ACCESS[rule.endpoint]
        for method in sorted((rule.methods or set()) - {"GET", "HEAD", "OPTIONS"}):
            # Each request starts from the role's fresh session: /logout ends the last one,
            # "sign out everywhere" gives the account a new session token.
            if role != "anonymous":
                db.session.refresh(owner)
                sign_in(client, owner)
            token = csrf_token(client)
            url = _url(rule.rule, values)
            api = rule.rule.startswith("/api/")
            response = client.open(
                url,
                method=method,
                headers={"X-CSRFToken": token},
                **({"json": {}} if api else {"data": {"csrf_token": token}}),
            )
            where = f"{role} {method} {url}: {response.status_code}"
            assert response.status_code < 500, where
            if _expected(access, role, api) <= {200, 302}:
                assert response.status_code not in (401, 403), where
            else:
                assert response.status_code in _expected(access, role, api), where


@pytest.mark.parametrize("role", ROLES)
def test_hidden_and_unpublished_sets_stay_hidden_by_id(app: Flask, role: str) -> None:
    hidden = DjSetFactory(is_hidden=True)
    draft = DjSetFactory(is_published=False)
    client = app.test_client()
    if role != "anonymous":
        sign_in(client, UserFactory(is_admin=role == ADMIN))
    db.session.commit()

    for dj_set in (hidden, draft):
        assert client.get(f"/sets/{dj_set.id}").status_code == 404
        assert client.get(f"/api/v1/sets/{dj_set.id}").status_code == 404
        listed = client.get("/api/v1/sets").json["items"]
        assert dj_set.id not in {item["id"] for item in listed}


def test_a_signed_in_session_cookie_is_hardened(app: Flask) -> None:
    client = app.test_client()
    sign_in(client, UserFactory())
    db.session.commit()

    response = client.get("/sets")

    cookies = response.headers.getlist("Set-Cookie")
    assert cookies, "a signed-in session is refreshed on each request"
    for cookie in cookies:
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
        assert cookie.startswith(app.config["SESSION_COOKIE_NAME"] + "=")
