"""API shapes of sets and tracklists."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from set2tracks.schemas import BrowseArgs, page_schema
from set2tracks.sets.models import FoundBy, SetSource
from set2tracks.sets.services import DEFAULT_SORT, SORTS
from set2tracks.tracks.schemas import TrackSchema


class ChannelRefSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)


class SetSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    source = fields.Enum(SetSource, by_value=True, required=True)
    video_id = fields.String(allow_none=True)
    channel = fields.Nested(ChannelRefSchema, allow_none=True)
    duration_seconds = fields.Integer(required=True)
    youtube_published_at = fields.DateTime(allow_none=True)
    published_at = fields.DateTime(allow_none=True)
    thumbnail_url = fields.String(allow_none=True)
    # As the caller sees them: private library tracks hidden from the caller are not counted.
    track_count = fields.Integer(attribute="shown_track_count", required=True)
    coverage = fields.Float(
        attribute="shown_coverage",
        required=True,
        metadata={"description": "Share of the set identified, 0 to 1"},
    )


class TracklistRowSchema(Schema):
    position = fields.Integer(required=True)
    start = fields.Float(attribute="start_seconds", required=True)
    end = fields.Float(attribute="end_seconds", required=True)
    track = fields.Nested(TrackSchema, allow_none=True, required=True)
    confidence = fields.Float(allow_none=True)
    speed = fields.Float(allow_none=True, metadata={"description": "Playback speed factor"})
    source = fields.Enum(FoundBy, by_value=True, attribute="found_by", allow_none=True)


class SetDetailSchema(SetSchema):
    tracklist = fields.List(fields.Nested(TracklistRowSchema), required=True)


class SetBrowseArgs(BrowseArgs):
    sort = fields.String(load_default=DEFAULT_SORT, validate=validate.OneOf(list(SORTS)))


SetPageSchema = page_schema("SetPage", SetSchema)
