"""Full-text search over a ``search_document`` column, on PostgreSQL and on SQLite.

PostgreSQL matches the GIN-indexed ``tsvector`` with ``websearch_to_tsquery`` (quotes,
``-exclusion``, ``or``) and ranks by relevance. SQLite has no ``tsvector``: every word must
appear in the document, matched case-insensitively with LIKE wildcards escaped.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Select, and_, func

from set2tracks.database import escape_like, search_config, search_vector
from set2tracks.extensions import db

MAX_QUERY_LENGTH = 200
_WORD = re.compile(r"[^\s\"]+")


def apply_search(query: Select[Any], column: Any, text: str) -> Select[Any]:
    """Filter ``query`` to rows whose ``column`` matches ``text``, best matches first."""
    text = text.strip()[:MAX_QUERY_LENGTH]
    if not text:
        return query
    if db.session.get_bind().dialect.name == "postgresql":
        ts_query = func.websearch_to_tsquery(search_config(), text)
        vector = search_vector(column)
        return query.where(vector.op("@@")(ts_query)).order_by(
            func.ts_rank(vector, ts_query).desc()
        )
    conditions = []
    for word in _WORD.findall(text.lower()):
        term = word.lstrip("-")
        if not term:
            continue
        matches = func.lower(column).like(f"%{escape_like(term)}%", escape="\\")
        conditions.append(~matches if word.startswith("-") else matches)
    return query.where(and_(*conditions)) if conditions else query
