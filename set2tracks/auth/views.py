"""Account pages. Sign-in, registration and the account page arrive with the accounts issue."""

from __future__ import annotations

from flask import Blueprint

from set2tracks.auth.models import User
from set2tracks.auth.services import load_user
from set2tracks.extensions import login_manager

blueprint = Blueprint("auth", __name__)


@login_manager.user_loader
def _load_user(session_token: str) -> User | None:
    return load_user(session_token)
