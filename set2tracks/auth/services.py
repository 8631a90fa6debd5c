"""Account logic."""

from __future__ import annotations

from sqlalchemy import select

from set2tracks.auth.models import User
from set2tracks.extensions import db


def load_user(session_token: str) -> User | None:
    """Return the active user whose current session token is ``session_token``."""
    user = db.session.scalar(select(User).where(User.session_token == session_token))
    return user if user is not None and user.is_active else None
