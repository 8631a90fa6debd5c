"""Pages for browsing tracks."""

from __future__ import annotations

from functools import partial

from flask import Blueprint, render_template

from set2tracks.browse import render_browse
from set2tracks.tracks import services
from set2tracks.tracks.viewer import current_viewer

blueprint = Blueprint("tracks", __name__)


@blueprint.get("/tracks")
def index() -> str:
    return render_browse(
        "tracks/index.html",
        partial(services.browse_tracks, viewer=current_viewer()),
        services.SORTS,
        services.DEFAULT_SORT,
        services.PAGE_SIZE,
    )


@blueprint.get("/tracks/<id:track_id>")
def detail(track_id: int) -> str:
    track = services.get_track(track_id, current_viewer())
    return render_template("tracks/detail.html", track=track)
