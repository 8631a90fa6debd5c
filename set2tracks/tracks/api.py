"""``/api/v1/tracks``: the catalogue as JSON."""

from __future__ import annotations

from set2tracks.pagination import Page, cursor_page
from set2tracks.schemas import ApiBlueprint
from set2tracks.tracks import services
from set2tracks.tracks.models import Track
from set2tracks.tracks.schemas import TrackBrowseArgs, TrackPageSchema, TrackSchema
from set2tracks.tracks.viewer import current_viewer

blueprint = ApiBlueprint("tracks_api", __name__, description="The track catalogue")


@blueprint.get("")
@blueprint.arguments(TrackBrowseArgs, location="query", as_kwargs=True)
@blueprint.response(200, TrackPageSchema)
def list_tracks(q: str, sort: str, cursor: str | None, limit: int) -> Page:
    """List tracks, searched by title, artist or label."""
    return cursor_page(services.browse_tracks(q, sort, current_viewer()), cursor, limit)


@blueprint.get("/<id:track_id>")
@blueprint.response(200, TrackSchema)
@blueprint.alt_response(404, response="NOT_FOUND", description="No such track")
def get_track(track_id: int) -> Track:
    """Get one track."""
    return services.get_track(track_id, current_viewer())
