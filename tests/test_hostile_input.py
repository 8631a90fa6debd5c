"""Hostile requests against every GET page and API route: rejected politely, never a 5xx.

Routes come from ``app.url_map`` so a new route is covered the day it is added. API routes
must reject with problem+json, pages with an HTML error page, and no body may leak a
traceback, SQL or a driver's message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from set2tracks.extensions import db
from tests.factories import DjSetFactory, GenreFactory, LabelFactory, SetTrackFactory, TrackFactory

# The JSON API answers problem+json; everything else, the /api/docs page included, HTML.
API_PREFIX = "/api/v1/"
HUGE_ID = 10**30
_PLACEHOLDER = re.compile(r"<(?:[^:<>]+:)?(?P<name>[^<>]+)>")
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Probes answer 503 by design when a dependency is down.
SKIPPED_ENDPOINTS = ("health.",)
LEAKS = (
    "Traceback (most recent call last)",
    'File "/',
    "sqlalchemy",
    "psycopg",
    "sqlite3",
    "werkzeug.",
    "NumericValueOutOfRange",
    "OverflowError",
)

HOSTILE_QUERIES = {
    "q-100k-chars": "q=" + "a" * 100_000,
    "q-100k-words": "q=" + "+".join(["-x"] * 50_000),
    "1000-parameters": "&".join(f"p{number}=x" for number in range(1_000)),
    "1000-repeated-q": "&".join(["q=x"] * 1_000),
    "limit-abc": "limit=abc",
    "limit-negative": "limit=-1",
    "limit-1e309": "limit=1e309",
    "limit-huge": f"limit={HUGE_ID}",
    "limit-empty": "limit=",
    "cursor-garbage": "cursor=%%%",
    "cursor-huge-offset": "cursor=eyJvIjogMWUzMDl9",  # {"o": 1e309}
    "sort-unknown": "sort=%3Cscript%3E",
    "page-abc": "page=abc",
    "page-negative": "page=-1",
    "page-huge": f"page={HUGE_ID}",
    "per-page-huge": f"per_page={HUGE_ID}",
    "nul-in-q": "q=%00",
    "nul-inside-q": "q=a%00b",
    "nul-in-every-parameter": "q=%00&sort=%00&cursor=%00&limit=%00&page=%00",
    "nul-in-name": "%00=1",
    "invalid-utf8-q": "q=%ff%fe",
    "invalid-utf8-everywhere": "q=%ff%fe&sort=%c3%28&cursor=%ff&limit=%ff%fe&page=%80",
    "invalid-utf8-name": "%ff%fe=1",
    "lone-surrogate": "q=%ed%a0%80",
    "tsquery-syntax": "q=" + "%22%27%5C%3A%2A%7C%26%21%28%29" * 20,
    "like-wildcards": "q=%25%25_%5C%5C%25",
}

DEEP = 100_000
HOSTILE_BODIES = {
    "deeply-nested-array": "[" * DEEP + "]" * DEEP,
    "deeply-nested-object": '{"a":' * DEEP + "1" + "}" * DEEP,
    "huge-string": json.dumps({"q": "a" * 5_000_000}),
    "huge-array": json.dumps(list(range(500_000))),
    "not-json": "{'q': nope",
    "invalid-utf8": b'{"q": "\xff\xfe"}',
}


@dataclass(frozen=True)
class Target:
    path: str
    is_api: bool
    methods: frozenset[str]


@pytest.fixture
def ids() -> dict[str, int]:
    """Existing ids for the int path parameters, by parameter name."""
    track = TrackFactory(label=LabelFactory(), genres=[GenreFactory()])
    dj_set = DjSetFactory()
    SetTrackFactory(dj_set=dj_set, track=track)
    # Views share the test's session; a 500 rolls it back. Committing releases the savepoint
    # into the test's outer transaction so the rows outlive such a rollback.
    db.session.commit()
    return {"set_id": dj_set.id, "track_id": track.id}


def fill(rule: Rule, ids: dict[str, int]) -> Iterator[str]:
    """Yield the rule's path with existing ids, then with an id far beyond any column."""
    if not rule.arguments:
        yield rule.rule
        return
    yield _PLACEHOLDER.sub(lambda match: str(ids.get(match["name"], 1)), rule.rule)
    yield _PLACEHOLDER.sub(str(HUGE_ID), rule.rule)


def targets(app: Flask, ids: dict[str, int]) -> list[Target]:
    found = []
    for rule in app.url_map.iter_rules():
        # File routes (<path:filename>) serve bundled assets, not data.
        if rule.endpoint.startswith(SKIPPED_ENDPOINTS) or "<path:" in rule.rule:
            continue
        methods = frozenset((rule.methods or set()) - {"HEAD", "OPTIONS"})
        for path in fill(rule, ids):
            found.append(Target(path, path.startswith(API_PREFIX), methods))
    return found


def problems_with(target: Target, request: str, response: TestResponse) -> list[str]:
    """Return what is wrong with how the app answered a hostile request."""
    found = []
    where = f"{request} -> {response.status_code} {response.mimetype}"
    body = response.get_data(as_text=True)
    if response.status_code >= 500:
        found.append(f"{where}: server error: {body[:200]}")
    elif response.status_code >= 400 and target.is_api:
        problem = response.get_json(silent=True) if response.is_json else None
        if response.mimetype != "application/problem+json" or not problem:
            found.append(f"{where}: API rejection is not problem+json")
        elif problem.get("status") != response.status_code or not problem.get("request_id"):
            found.append(f"{where}: problem+json without status or request_id: {problem}")
    elif response.status_code >= 400 and response.mimetype != "text/html":
        found.append(f"{where}: page rejection is not an HTML page")
    found.extend(f"{where}: body shows {leak!r}" for leak in LEAKS if leak in body)
    return found


def test_targets_cover_pages_and_api(app: Flask, ids: dict[str, int]) -> None:
    paths = {target.path for target in targets(app, ids)}

    assert {"/", "/sets", "/tracks", "/api/v1/sets", "/api/v1/tracks"} <= paths
    assert f"/sets/{ids['set_id']}" in paths
    assert f"/api/v1/tracks/{HUGE_ID}" in paths


@pytest.mark.parametrize("query", HOSTILE_QUERIES.values(), ids=HOSTILE_QUERIES.keys())
def test_hostile_query_string_never_breaks_a_get_route(
    app: Flask, client: FlaskClient, ids: dict[str, int], query: str
) -> None:
    found = []
    for target in targets(app, ids):
        if "GET" not in target.methods:
            continue
        response = client.get(target.path, query_string=query)
        found += problems_with(target, f"GET {target.path}?{query[:80]}", response)

    assert not found, "\n".join(found)


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_hostile_json_body_never_breaks_an_api_route(
    app: Flask, client: FlaskClient, ids: dict[str, int], body: str | bytes
) -> None:
    found = []
    api = [target for target in targets(app, ids) if target.is_api]
    assert api
    # One path may have several rules (GET and POST of /api/v1/me/tokens): allow their union.
    allowed: dict[str, set[str]] = {}
    for target in api:
        allowed.setdefault(target.path, set()).update(target.methods)
    for target in api:
        # Routes that take a body get it; read-only routes get it too, plus a POST (405).
        for method in sorted((target.methods & WRITE_METHODS) | {"GET", "POST"}):
            response = client.open(
                target.path, method=method, data=body, content_type="application/json"
            )
            request = f"{method} {target.path} (application/json, {len(body)} bytes)"
            found += problems_with(target, request, response)
            if method not in allowed[target.path]:
                assert response.status_code == 405, request

    assert not found, "\n".join(found)
