"""Schemas shared by every API: list arguments and pages."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from set2tracks.search import MAX_QUERY_LENGTH


class BrowseArgs(Schema):
    q = fields.String(
        load_default="",
        validate=validate.Length(max=MAX_QUERY_LENGTH),
        metadata={"description": "Full-text search"},
    )
    cursor = fields.String(
        load_default=None,
        validate=validate.Length(max=200),
        metadata={"description": "next_cursor of the previous page"},
    )
    limit = fields.Integer(load_default=30, validate=validate.Range(1, 100))


def page_schema(name: str, item: type[Schema]) -> type[Schema]:
    """Return the ``{"items": [...], "next_cursor": ...}`` schema for ``item``."""
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item), required=True),
            "next_cursor": fields.String(required=True, allow_none=True),
        },
        name=name,
    )
