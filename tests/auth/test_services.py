"""Who a session belongs to."""

from __future__ import annotations

from flask import Flask

from set2tracks.auth.services import load_user
from tests.factories import UserFactory


def test_a_session_token_loads_its_user(app: Flask) -> None:
    user = UserFactory()

    assert load_user(user.session_token) is user
    assert user.get_id() == user.session_token


def test_a_rotated_token_or_a_disabled_account_loads_nobody(app: Flask) -> None:
    rotated = UserFactory()
    old_token = rotated.session_token
    rotated.session_token = "a-new-token-after-a-password-change"
    disabled = UserFactory(is_disabled=True)

    assert load_user(old_token) is None
    assert load_user(disabled.session_token) is None
    assert load_user("unknown") is None
