"""Set2Tracks: turn DJ sets into tracklists."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from set2tracks import models  # noqa: F401  (the whole schema, for the ORM and Alembic)
from set2tracks.api import init_api
from set2tracks.auth.views import blueprint as auth_blueprint
from set2tracks.cli import init_cli
from set2tracks.clients.mail import init_mail
from set2tracks.config import load_config, persistent_secret_key
from set2tracks.docs.views import blueprint as docs_blueprint
from set2tracks.errors import init_errorhandlers
from set2tracks.extensions import init_extensions
from set2tracks.health.views import blueprint as health_blueprint
from set2tracks.logs import init_logging
from set2tracks.perimeter import init_cors, init_request_guards, register_converters
from set2tracks.queues import init_queues
from set2tracks.sets.upload_slots import init_upload_slots
from set2tracks.sets.views import blueprint as sets_blueprint
from set2tracks.tracks.views import blueprint as tracks_blueprint
from set2tracks.version import __version__

__all__ = ["__version__", "create_app"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application; ``config`` (tests) overrides what the environment gives."""
    app = Flask(__name__, instance_relative_config=True)
    configure(app, config)
    register_logging(app)
    register_extensions(app)
    register_clients(app)
    register_errorhandlers(app)
    register_request_guards(app)
    register_blueprints(app)
    register_cors(app)
    register_jobs(app)
    register_cli(app)
    register_proxy(app)
    return app


def configure(app: Flask, overrides: Mapping[str, Any] | None) -> None:
    # The embedded database, sessions and secret key live in instance/.
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(load_config(app.instance_path, read_dotenv=overrides is None))
    if overrides:
        app.config.update(overrides)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = persistent_secret_key(app.instance_path)


def register_logging(app: Flask) -> None:
    init_logging(app)


def register_extensions(app: Flask) -> None:
    init_extensions(app)


def register_clients(app: Flask) -> None:
    init_mail(app)
    init_upload_slots(app)


def register_errorhandlers(app: Flask) -> None:
    init_errorhandlers(app)


def register_blueprints(app: Flask) -> None:
    register_converters(app)
    for blueprint in (
        health_blueprint,
        auth_blueprint,
        sets_blueprint,
        tracks_blueprint,
        docs_blueprint,
    ):
        app.register_blueprint(blueprint)
    init_api(app)


def register_request_guards(app: Flask) -> None:
    init_request_guards(app)


def register_cors(app: Flask) -> None:
    """CORS comes after the routes: a route may declare extra allowed origins."""
    init_cors(app)


def register_jobs(app: Flask) -> None:
    init_queues(app)


def register_cli(app: Flask) -> None:
    init_cli(app)


def register_proxy(app: Flask) -> None:
    """Trust exactly the configured number of proxy hops for client address and scheme."""
    x_for = app.config["PROXY_FIX_X_FOR"]
    x_proto = app.config["PROXY_FIX_X_PROTO"]
    if x_for or x_proto:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=x_for, x_proto=x_proto)  # type: ignore[method-assign]
