"""Pages for browsing sets."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from set2tracks.browse import render_browse
from set2tracks.links import external_url
from set2tracks.sets import services
from set2tracks.tracks.viewer import current_viewer

blueprint = Blueprint("sets", __name__)


@blueprint.get("/")
@blueprint.get("/sets")
def index() -> str:
    viewer = current_viewer()
    return render_browse(
        "sets/index.html",
        lambda text, sort: services.browse_sets(text, sort, viewer),
        services.SORTS,
        services.DEFAULT_SORT,
        services.PAGE_SIZE,
    )


@blueprint.get("/sets/<id:set_id>")
def detail(set_id: int) -> str:
    dj_set = services.get_visible_set(set_id, current_viewer())
    page_url = external_url("sets.detail", set_id=set_id)
    # ?t=<seconds> deep-links into the set; anything else starts at the beginning.
    start = request.args.get("t", 0, type=int)
    return render_template(
        "sets/detail.html",
        dj_set=dj_set,
        start=start if 0 < start < dj_set.duration_seconds else 0,
        json_ld=services.video_json_ld(dj_set, page_url),
    )
