"""The catalogue's viewer for the current request: who may see private library tracks."""

from __future__ import annotations

from flask_login import current_user

from set2tracks.tracks.services import ANONYMOUS, Viewer


def current_viewer() -> Viewer:
    """The signed-in user (browser session or API token) as a catalogue viewer."""
    if not current_user.is_authenticated:
        return ANONYMOUS
    return Viewer(user_id=current_user.id, is_admin=bool(current_user.is_admin))
