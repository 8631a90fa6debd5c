"""What every request crosses before a view sees it.

Typed ids in URLs, no NUL bytes anywhere, JSON-only bodies on the API, and CORS on
``/api/*`` for the configured origins plus the extra ones a route declares with
``@cors_origins(...)``. Headers (Talisman), limits (Flask-Limiter) and sessions are set up
in ``extensions.py``; errors are rendered in ``errors.py``.

A view marked ``@reads_its_own_body`` (uploads) gets its form body unread: the checks here
that would parse it (NUL bytes, and CSRF in ``auth``) are left to the view, which runs them
once it knows who is sending and that their quota allows it; the CSRF token before the
first byte of a file is stored (``sets.uploads``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType
from werkzeug.routing import IntegerConverter

from set2tracks.extensions import cors

API_PREFIX = "/api/v1"
MAX_ID = 2**31 - 1  # the database's INTEGER: a larger id can match nothing
# No request of ours nests deeper; parsers recurse per level and fail (500) near 1000.
MAX_JSON_DEPTH = 64
_JSON_SPECIAL = re.compile(rb'[\[\]{}"\\]')

View = TypeVar("View", bound=Callable[..., Any])
_CONVERTER = re.compile(r"<(?:(?P<converter>[a-z]+)(?:\([^)]*\))?:)?[a-z_]+>")


class IdConverter(IntegerConverter):
    """``<id:set_id>``: a positive integer that fits a database id, else 404."""

    def __init__(self, url_map: Any) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)


def reads_its_own_body(view: View) -> View:
    """Leave this view's form body unread by the perimeter: the view parses and checks it."""
    view.reads_its_own_body = True  # type: ignore[attr-defined]
    return view


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _view_reads_its_own_body() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "reads_its_own_body", False))


def body_left_to_view() -> bool:
    """Whether the request carries a form that the matched view parses (and checks) itself."""
    return request.mimetype in FORM_TYPES and _view_reads_its_own_body()


def register_converters(app: Flask) -> None:
    app.url_map.converters["id"] = IdConverter


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
        numeric = match.group("converter") in ("int", "id")
        parts.append("[0-9]+" if numeric else "[^/]+")
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


def reject_nul_bytes() -> None:
    """Refuse NUL bytes in the path, query or form: no database stores them, nobody types them.

    JSON bodies are checked field by field by their schemas (``schemas.Text``). A view that
    reads its own body calls this again once it has parsed it.
    """
    pairs = [*request.args.items(multi=True)]
    body_parsed = "form" in request.__dict__  # parsed already: reading it costs nothing
    if request.mimetype in FORM_TYPES and (body_parsed or not body_left_to_view()):
        pairs += request.form.items(multi=True)
    if "\x00" in request.path or any("\x00" in key or "\x00" in value for key, value in pairs):
        raise BadRequest("The request contains a NUL byte.")


def require_json_body() -> None:
    """Refuse a request body that is not JSON on the API (415), before any view parses it."""
    if request.routing_exception is not None or not request.path.startswith(f"{API_PREFIX}/"):
        return
    has_body = bool(request.content_length) or request.headers.get("Transfer-Encoding")
    if not has_body or request.is_json:
        return
    if _view_reads_its_own_body():
        if request.mimetype not in FORM_TYPES:
            raise UnsupportedMediaType(
                "Send the request body as application/json or multipart/form-data."
            )
        return
    raise UnsupportedMediaType("Send the request body as application/json.")


def json_nesting_exceeds(data: bytes, limit: int) -> bool:
    """Whether the JSON text ``data`` nests arrays and objects deeper than ``limit``.

    Scans only brackets, quotes and backslashes, and stops as soon as the limit is passed,
    so a megabyte of "[" costs a few microseconds. Brackets inside strings do not count.
    """
    depth = 0
    in_string = False
    escaped_at = -1
    for match in _JSON_SPECIAL.finditer(data):
        position = match.start()
        char = data[position : position + 1]
        if position == escaped_at:
            continue
        if in_string:
            if char == b"\\":
                escaped_at = position + 1
            elif char == b'"':
                in_string = False
        elif char == b'"':
            in_string = True
        elif char in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif char in (b"]", b"}"):
            depth -= 1
    return False


def reject_deep_json() -> None:
    """Refuse deeply nested JSON (400) before Flask or webargs parse it, on every route."""
    if request.routing_exception is not None or not request.is_json:
        return  # a 404 or 405 is the answer, whatever the body
    if json_nesting_exceeds(request.get_data(cache=True), MAX_JSON_DEPTH):
        raise BadRequest(f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep.")


def init_request_guards(app: Flask) -> None:
    """Install the guards that run before credentials are even looked at."""
    app.before_request(reject_nul_bytes)
    app.before_request(require_json_body)
    app.before_request(reject_deep_json)
