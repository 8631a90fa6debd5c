"""Deeply nested JSON is refused with a 400 before any parser recurses into it."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from set2tracks.auth.services import create_api_token
from set2tracks.extensions import db
from set2tracks.perimeter import MAX_JSON_DEPTH
from tests.auth.helpers import csrf_token, sign_in
from tests.factories import UserFactory

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
DEEP = 200_000
NESTED = {
    "array": "[" * DEEP,
    "object": '{"a":' * DEEP,
    "array-closed": "[" * DEEP + "]" * DEEP,
}


def _json_writes(app: Flask, token_id: int) -> list[tuple[str, str]]:
    """Every (method, path) of the app that accepts a body, with its ids filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) & WRITE_METHODS):
            path = re.sub(r"<(?:[a-z]+:)?[a-z_]+>", str(token_id), rule.rule)
            found.append((method, path))
    return found


@pytest.mark.parametrize("body", NESTED.values(), ids=NESTED.keys())
@pytest.mark.parametrize("credential", ["bearer", "session"])
def test_deeply_nested_json_is_a_400_problem_on_every_json_endpoint(
    app: Flask, client: FlaskClient, body: str, credential: str
) -> None:
    user = UserFactory()
    db.session.commit()  # token creation runs with no writes of the caller pending
    issued = create_api_token(user.id, "deep")
    headers = {"Content-Type": "application/json"}
    if credential == "bearer":
        headers["Authorization"] = f"Bearer {issued.secret}"
    else:
        sign_in(client, user)
        headers["X-CSRFToken"] = csrf_token(client)
    writes = _json_writes(app, issued.id)
    assert ("POST", "/api/v1/me/tokens") in writes

    for method, path in writes:
        response = client.open(path, method=method, data=body, headers=headers)

        where = f"{method} {path}"
        assert response.status_code == 400, where
        if path.startswith("/api/"):
            assert response.mimetype == "application/problem+json", where
            assert "nested" in response.json["detail"], where


@pytest.mark.parametrize("depth", [1, 10, MAX_JSON_DEPTH])
def test_reasonably_nested_json_still_reaches_the_view(
    app: Flask, client: FlaskClient, depth: int
) -> None:
    user = UserFactory()
    db.session.commit()  # token creation runs with no writes of the caller pending
    issued = create_api_token(user.id, "shallow")
    # Nesting inside a string is text, not structure.
    name = "[[[{{{" * 100
    body = "[" * (depth - 1) + f'{{"name": "{name}"}}' + "]" * (depth - 1)

    response = client.post(
        "/api/v1/me/tokens",
        data=body if depth > 1 else f'{{"name": "{name}"}}',
        headers={"Authorization": f"Bearer {issued.secret}", "Content-Type": "application/json"},
    )

    assert response.status_code != 500
    assert "nested" not in response.get_data(as_text=True)
