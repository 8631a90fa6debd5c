"""API shapes of the catalogue."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from set2tracks.schemas import BrowseArgs, page_schema
from set2tracks.tracks.services import DEFAULT_SORT, SORTS


class TrackSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    artist = fields.String(required=True)
    album = fields.String(allow_none=True)
    label = fields.Pluck("LabelSchema", "name", allow_none=True)
    genres = fields.Pluck("GenreSchema", "name", many=True)
    release_date = fields.Date(allow_none=True)
    release_year = fields.Integer(allow_none=True)
    cover_url = fields.String(allow_none=True)
    preview_url = fields.String(allow_none=True)
    spotify_id = fields.String(allow_none=True)
    apple_music_id = fields.String(allow_none=True)
    isrc = fields.String(allow_none=True)
    set_count = fields.Integer(required=True)


class LabelSchema(Schema):
    name = fields.String()


class GenreSchema(Schema):
    name = fields.String()


class TrackBrowseArgs(BrowseArgs):
    sort = fields.String(load_default=DEFAULT_SORT, validate=validate.OneOf(list(SORTS)))


TrackPageSchema = page_schema("TrackPage", TrackSchema)
