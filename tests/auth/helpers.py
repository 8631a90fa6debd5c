"""Signing test clients in, and the CSRF token their forms carry."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

_CSRF = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def sign_in(client: FlaskClient, user: Any) -> None:
    """Put ``user`` in the client's session, as a successful sign-in does."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True


def csrf_token(client: FlaskClient) -> str:
    """Return the CSRF token of the client's session, read off the sign-in form."""
    page = client.get("/reset-password").get_data(as_text=True)
    match = _CSRF.search(page)
    assert match is not None, "no CSRF token on the form"
    return match.group(1) or match.group(2)
