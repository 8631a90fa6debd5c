"""The JSON API under ``/api/v1``, documented as OpenAPI 3 from its marshmallow schemas.

Also the API's perimeter: JSON-only bodies, and CORS for the configured origins plus the
extra ones a route declares with ``@cors_origins(...)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, request
from flask_smorest import Api
from werkzeug.exceptions import UnsupportedMediaType

from set2tracks.extensions import cors
from set2tracks.sets.api import blueprint as sets_api
from set2tracks.tracks.api import blueprint as tracks_api

API_PREFIX = "/api/v1"


class Set2TracksApi(Api):
    """flask-smorest's Api, leaving error rendering to ``set2tracks.errors``."""

    def _register_error_handlers(self) -> None:
        # errors.py already renders every HTTPException (problem+json under /api).
        return None


def init_api(app: Flask) -> None:
    app.config.update(
        API_TITLE="Set2Tracks API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=API_PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
    )
    api = Set2TracksApi(app)
    api.register_blueprint(sets_api, url_prefix=f"{API_PREFIX}/sets")
    api.register_blueprint(tracks_api, url_prefix=f"{API_PREFIX}/tracks")
    app.before_request(require_json_body)
    init_cors(app)


View = TypeVar("View", bound=Callable[..., Any])
_CONVERTER = re.compile(r"<(?:(?P<converter>[a-z]+)(?:\([^)]*\))?:)?[a-z_]+>")


def cors_origins(*origins: str) -> Callable[[View], View]:
    """Allow these origins on this route, besides the configured ``CORS_ORIGINS``."""

    def declare(view: View) -> View:
        view.cors_origins = origins  # type: ignore[attr-defined]
        return view

    return declare


def _rule_pattern(rule: str) -> str:
    """Turn a Flask rule into the anchored regex Flask-CORS matches request paths with."""
    parts = []
    position = 0
    for match in _CONVERTER.finditer(rule):
        parts.append(re.escape(rule[position : match.start()]))
        parts.append("[0-9]+" if match.group("converter") == "int" else "[^/]+")
        position = match.end()
    parts.append(re.escape(rule[position:]))
    return "^" + "".join(parts) + "$"


def init_cors(app: Flask) -> None:
    """Enable CORS on ``/api/*`` only, for the configured origins and routes' extra ones."""
    configured = list(app.config["CORS_ORIGINS"])
    resources: dict[str | re.Pattern[str], dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        extra = getattr(app.view_functions[rule.endpoint], "cors_origins", ())
        if extra and rule.rule.startswith("/api/"):
            resources[_rule_pattern(rule.rule)] = {"origins": [*configured, *extra]}
    # Flask-CORS tries the longest pattern first, so routes' own entries win.
    resources[r"^/api/.*"] = {"origins": configured}
    cors.init_app(
        app, resources=resources, supports_credentials=True, expose_headers=["X-Request-ID"]
    )


def require_json_body() -> None:
    """Refuse a request body that is not JSON on the API (415), before any view parses it."""
    if not request.path.startswith(f"{API_PREFIX}/"):
        return
    has_body = bool(request.content_length) or request.headers.get("Transfer-Encoding")
    if has_body and not request.is_json:
        raise UnsupportedMediaType("Send the request body as application/json.")
