"""Pages for browsing tracks."""

from __future__ import annotations

from flask import Blueprint, render_template

from set2tracks.browse import render_browse
from set2tracks.tracks import services

blueprint = Blueprint("tracks", __name__)


@blueprint.get("/tracks")
def index() -> str:
    return render_browse(
        "tracks/index.html",
        services.browse_tracks,
        services.SORTS,
        services.DEFAULT_SORT,
        services.PAGE_SIZE,
    )


@blueprint.get("/tracks/<id:track_id>")
def detail(track_id: int) -> str:
    return render_template("tracks/detail.html", track=services.get_track(track_id))
