"""The JSON API under ``/api/v1``, documented as OpenAPI 3 from its marshmallow schemas."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from set2tracks.perimeter import API_PREFIX, MAX_ID, IdConverter
from set2tracks.sets.api import blueprint as sets_api
from set2tracks.tracks.api import blueprint as tracks_api


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
    api.register_converter(
        IdConverter, lambda _: {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    )
    api.register_blueprint(sets_api, url_prefix=f"{API_PREFIX}/sets")
    api.register_blueprint(tracks_api, url_prefix=f"{API_PREFIX}/tracks")
