"""Query-string parameters shared by the browse pages."""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from typing import Any

from flask import abort, render_template, request
from sqlalchemy import Select

from set2tracks.extensions import db
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


def render_browse(
    template: str,
    browse: Callable[[str, str], Select[Any]],
    sorts: Mapping[str, Any],
    default: str,
    page_size: int,
) -> str:
    """Render one page of a browse listing: searched, sorted, paginated from the query string."""
    params = browse_params(sorts, default)
    page = db.paginate(
        browse(params.text, params.sort),
        page=params.page,
        per_page=page_size,
        max_per_page=page_size,
    )
    return render_template(
        template, page=page, text=params.text, sort=params.sort, sorts=list(sorts)
    )
