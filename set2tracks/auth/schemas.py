"""API shapes of the signed-in person and their tokens."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from set2tracks.auth.forms import TOKEN_NAME_LENGTH
from set2tracks.auth.services import TOKEN_EXPIRY_DAYS
from set2tracks.schemas import Text


class MeSchema(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    display_name = fields.String(required=True)
    is_admin = fields.Boolean(required=True)
    is_premium = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)
    last_login_at = fields.DateTime(allow_none=True)


class TokenSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    prefix = fields.String(required=True, metadata={"description": "First characters after s2t_"})
    created_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(allow_none=True)
    expires_at = fields.DateTime(allow_none=True, metadata={"description": "null: until revoked"})


class NewTokenArgs(Schema):
    name = Text(
        required=True,
        validate=validate.Length(min=1, max=TOKEN_NAME_LENGTH),
        metadata={"example": "laptop script"},
    )
    expires_in_days = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(TOKEN_EXPIRY_DAYS),
        metadata={"description": "Days the token works; omitted or null: until revoked"},
    )


class NewTokenSchema(TokenSchema):
    token = fields.String(
        required=True, metadata={"description": "The token itself: shown only in this response"}
    )


class TokenListSchema(Schema):
    items = fields.List(fields.Nested(TokenSchema), required=True)
