"""``/api/v1/sets``: published sets and their tracklists as JSON."""

from __future__ import annotations

from set2tracks.pagination import Page, cursor_page
from set2tracks.schemas import ApiBlueprint
from set2tracks.sets import services
from set2tracks.sets.models import DjSet
from set2tracks.sets.schemas import SetBrowseArgs, SetDetailSchema, SetPageSchema
from set2tracks.tracks.viewer import current_viewer

blueprint = ApiBlueprint("sets_api", __name__, description="Published DJ sets")


@blueprint.get("")
@blueprint.arguments(SetBrowseArgs, location="query", as_kwargs=True)
@blueprint.response(200, SetPageSchema)
def list_sets(q: str, sort: str, cursor: str | None, limit: int) -> Page:
    """List published sets, searched by title and channel name."""
    return cursor_page(services.browse_sets(q, sort, current_viewer()), cursor, limit)


@blueprint.get("/<id:set_id>")
@blueprint.response(200, SetDetailSchema)
@blueprint.alt_response(404, response="NOT_FOUND", description="No such published set")
def get_set(set_id: int) -> DjSet:
    """Get one published set with its tracklist."""
    return services.get_visible_set(set_id, current_viewer())
