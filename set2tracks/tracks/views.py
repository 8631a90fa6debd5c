"""Pages for browsing tracks."""

from __future__ import annotations

from flask import Blueprint, render_template

from set2tracks.browse import browse_params
from set2tracks.extensions import db
from set2tracks.tracks import services

blueprint = Blueprint("tracks", __name__)


@blueprint.get("/tracks")
def index() -> str:
    params = browse_params(services.SORTS, services.DEFAULT_SORT)
    page = db.paginate(
        services.browse_tracks(params.text, params.sort),
        page=params.page,
        per_page=services.PAGE_SIZE,
        max_per_page=services.PAGE_SIZE,
    )
    return render_template(
        "tracks/index.html",
        page=page,
        text=params.text,
        sort=params.sort,
        sorts=list(services.SORTS),
    )


@blueprint.get("/tracks/<id:track_id>")
def detail(track_id: int) -> str:
    return render_template("tracks/detail.html", track=services.get_track(track_id))
