"""``/api/docs``: Swagger UI over ``/api/v1/openapi.json``, its assets served by this app."""

from __future__ import annotations

from pathlib import PurePosixPath

from flask import Blueprint, Response, abort, render_template, send_from_directory
from swagger_ui_bundle import swagger_ui_path

blueprint = Blueprint("docs", __name__)

# The Swagger UI version is part of this directory's name, so a cached asset never goes stale.
ASSETS_DIRECTORY = str(swagger_ui_path)
ASSETS_MAX_AGE = 365 * 24 * 3600
# The package also ships demo pages (index.html, oauth2-redirect.html) that load the
# petstore spec and carry inline script; only the assets themselves are ours to serve.
ASSET_SUFFIXES = frozenset({".js", ".css", ".map", ".png"})


@blueprint.get("/api/docs")
def index() -> str:
    """Render the Swagger UI page for the v1 API."""
    return render_template("docs/index.html")


@blueprint.get("/api/docs/assets/<path:filename>")
def asset(filename: str) -> Response:
    """Send one Swagger UI asset from the installed package (404 outside its directory).

    Not rate limited, like /static (see NOT_RATE_LIMITED): one page view loads several.
    """
    if PurePosixPath(filename).suffix not in ASSET_SUFFIXES:
        abort(404)
    # send_from_directory refuses ".." and absolute paths, and 404s on missing files.
    return send_from_directory(ASSETS_DIRECTORY, filename, max_age=ASSETS_MAX_AGE)
