"""Query-string parameters shared by the browse pages."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass

from flask import abort, request

from set2tracks.search import MAX_QUERY_LENGTH

# Far beyond any real catalogue page; keeps the OFFSET inside what databases accept.
MAX_PAGE = 10_000


@dataclass(frozen=True)
class BrowseParams:
    text: str
    sort: str
    page: int


def browse_params(sorts: Container[str], default: str) -> BrowseParams:
    """Return the search text, an allow-listed sort key and the page from the query string.

    A page number that is not a positive integer within ``MAX_PAGE`` is a 404, like any
    page that does not exist.
    """
    text = request.args.get("q", "", type=str)[:MAX_QUERY_LENGTH]
    sort = request.args.get("sort", default, type=str)
    raw_page = request.args.get("page", "1", type=str)
    valid = raw_page.isascii() and raw_page.isdigit() and len(raw_page) <= len(str(MAX_PAGE))
    if not (valid and 1 <= int(raw_page) <= MAX_PAGE):
        abort(404)
    return BrowseParams(text, sort if sort in sorts else default, int(raw_page))
