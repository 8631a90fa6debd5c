"""The JSON API under ``/api/v1``, documented as OpenAPI 3 from its marshmallow schemas.

Errors are ``application/problem+json`` and documented as such: every operation lists the
error statuses it can answer (its own, plus 400, 429, 500 and 503, which any request can
meet at the perimeter), each with the ``Problem`` schema.
"""

from __future__ import annotations

import http
from typing import Any

from apispec import APISpec, BasePlugin
from flask import Flask
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from set2tracks.auth.api import blueprint as me_api
from set2tracks.errors import PROBLEM_JSON
from set2tracks.perimeter import API_PREFIX, MAX_ID, IdConverter
from set2tracks.schemas import ProblemSchema
from set2tracks.sets.api import blueprint as sets_api
from set2tracks.sets.api import submissions_blueprint as submissions_api
from set2tracks.tracks.api import blueprint as tracks_api

# Statuses any request may get before or around its view: bad input at the perimeter,
# rate limits, failures and unavailable dependencies.
PERIMETER_ERRORS = {
    400: "BAD_REQUEST",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


class PerimeterErrorsPlugin(BasePlugin):
    """Document the perimeter's error responses on every operation."""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            for status, name in PERIMETER_ERRORS.items():
                # flask-smorest keys an operation's own responses by int: one documented
                # there (with its own description) is kept.
                if status not in responses and str(status) not in responses:
                    responses[str(status)] = name


class Set2TracksApi(Api):
    """flask-smorest's Api, with errors rendered by ``set2tracks.errors`` as problem+json."""

    ERROR_SCHEMA = ProblemSchema
    # No catch-all "default" response: each status an operation answers is listed.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_error_handlers(self) -> None:
        # errors.py already renders every HTTPException (problem+json under /api).
        return None

    def _register_responses(self) -> None:
        spec: APISpec = self.spec
        for status in http.HTTPStatus:
            if status < 400:
                continue
            response: dict[str, Any] = {"description": status.phrase, "schema": ProblemSchema}
            prepare_response(response, spec, PROBLEM_JSON)
            spec.components.response(status.name, response, lazy=True)


SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A personal API token, created on the account page.",
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": "__Host-session",  # s2t_session in the embedded profile (plain HTTP)
        "description": "The browser session of a signed-in person.",
    },
    "csrf": {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRFToken",
        "description": "Required with the session cookie on requests that change state.",
    },
}


def init_api(app: Flask) -> None:
    app.config.update(
        API_TITLE="Set2Tracks API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=API_PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {
                "description": "DJ sets, their tracklists and the tracks in them. Reading is"
                " open to everyone; lists are paginated with an opaque cursor; errors are"
                " RFC 9457 problem details carrying the request id."
            },
            "components": {"securitySchemes": SECURITY_SCHEMES},
            # Anonymous access, a token, or a session with its CSRF header.
            "security": [{}, {"bearer": []}, {"session": [], "csrf": []}],
        },
    )
    api = Set2TracksApi(app, spec_kwargs={"extra_plugins": [PerimeterErrorsPlugin()]})
    api.register_converter(
        IdConverter, lambda _: {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    )
    api.register_blueprint(sets_api, url_prefix=f"{API_PREFIX}/sets")
    api.register_blueprint(submissions_api, url_prefix=f"{API_PREFIX}/submissions")
    api.register_blueprint(tracks_api, url_prefix=f"{API_PREFIX}/tracks")
    api.register_blueprint(me_api, url_prefix=f"{API_PREFIX}/me")
