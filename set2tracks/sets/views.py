"""Pages for browsing sets."""

from __future__ import annotations

from flask import Blueprint, render_template

from set2tracks.browse import browse_params
from set2tracks.extensions import db
from set2tracks.sets import services

blueprint = Blueprint("sets", __name__)


@blueprint.get("/")
@blueprint.get("/sets")
def index() -> str:
    params = browse_params(services.SORTS, services.DEFAULT_SORT)
    page = db.paginate(
        services.browse_sets(params.text, params.sort),
        page=params.page,
        per_page=services.PAGE_SIZE,
        max_per_page=services.PAGE_SIZE,
    )
    return render_template(
        "sets/index.html",
        page=page,
        text=params.text,
        sort=params.sort,
        sorts=list(services.SORTS),
    )


@blueprint.get("/sets/<id:set_id>")
def detail(set_id: int) -> str:
    return render_template("sets/detail.html", dj_set=services.get_visible_set(set_id))
