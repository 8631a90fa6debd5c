"""Building blocks shared by every API: strict argument parsing, list arguments, pages."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate
from webargs.flaskparser import FlaskParser

from set2tracks.search import MAX_QUERY_LENGTH


class StrictParser(FlaskParser):
    """webargs' parser, rejecting unknown query parameters instead of ignoring them."""

    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": RAISE,
        "querystring": RAISE,
    }


class ApiBlueprint(Blueprint):
    """A flask-smorest blueprint whose arguments are parsed strictly."""

    ARGUMENTS_PARSER = StrictParser()


class ProblemSchema(Schema):
    """An RFC 9457 problem, as every API error is answered."""

    type = fields.String(required=True, metadata={"example": "about:blank"})
    title = fields.String(required=True, metadata={"example": "Not Found"})
    status = fields.Integer(required=True, metadata={"example": 404})
    detail = fields.String(
        required=True, metadata={"example": "This set does not exist or is not published."}
    )
    request_id = fields.String(
        required=True, allow_none=True, metadata={"example": "5f0c1d3e9a7b4c21b8e6d4f2a1c3b5d7"}
    )
    errors = fields.Dict(
        keys=fields.String(),
        metadata={"description": "Field errors of a 400 or 422, by location and field"},
    )


class Text(fields.String):
    """A string a database can store: no NUL character, no lone surrogate (invalid UTF-8)."""

    default_error_messages = {"unstorable": "Contains a character that is not allowed."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise self.make_error("unstorable") from None
        if "\x00" in text:
            raise self.make_error("unstorable")
        return text


class BrowseArgs(Schema):
    q = Text(
        load_default="",
        validate=validate.Length(max=MAX_QUERY_LENGTH),
        metadata={"description": "Full-text search"},
    )
    cursor = Text(
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
