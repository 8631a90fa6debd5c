"""Query-string parameters shared by the browse pages."""

from __future__ import annotations

from collections.abc import Container

from flask import request

from set2tracks.search import MAX_QUERY_LENGTH


def browse_params(sorts: Container[str], default: str) -> tuple[str, str]:
    """Return the search text and an allow-listed sort key from the query string."""
    text = request.args.get("q", "", type=str)[:MAX_QUERY_LENGTH]
    sort = request.args.get("sort", default, type=str)
    return text, sort if sort in sorts else default
