"""Opaque cursors for API lists: ``{"items": [...], "next_cursor": "..." | null}``."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select

from set2tracks.errors import InvalidInput
from set2tracks.extensions import db

MAX_OFFSET = 100_000


@dataclass
class Page:
    items: list[Any]
    next_cursor: str | None


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """Return the offset a cursor stands for; a forged or corrupt cursor is a 422."""
    if not cursor:
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        offset = json.loads(base64.urlsafe_b64decode(padded.encode()))["o"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidInput("This cursor is not valid.", fields={"cursor": ["invalid"]}) from None
    if not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput("This cursor is not valid.", fields={"cursor": ["invalid"]})
    return offset


def cursor_page(query: Select[Any], cursor: str | None, limit: int) -> Page:
    """Run ``query`` for the page after ``cursor``; one extra row tells whether more follow."""
    offset = decode_cursor(cursor)
    rows = list(db.session.scalars(query.offset(offset).limit(limit + 1)).unique())
    more = len(rows) > limit
    return Page(rows[:limit], encode_cursor(offset + limit) if more else None)
