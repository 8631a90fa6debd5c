"""``/healthz`` (alive), ``/readyz`` (dependencies answer) and ``/health`` (details).

``/health`` tells versions, uptime, queues and workers: an attacker's map. Only admins and
monitors holding ``HEALTH_TOKEN`` (as a Bearer token) may read it.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask_login import current_user

from set2tracks.errors import Forbidden, Unauthorized
from set2tracks.extensions import talisman_options
from set2tracks.health.checks import run_checks
from set2tracks.version import __version__

blueprint = Blueprint("health", __name__)
_STARTED = time.monotonic()

# Load balancers probe over plain HTTP and must never be redirected (nor rate limited:
# see NOT_RATE_LIMITED in extensions.py). /health is no probe: it carries HEALTH_TOKEN and
# admins' cookies, which must never travel in cleartext, so it keeps the HTTPS redirect.
_probe = talisman_options(force_https=False)


@blueprint.get("/healthz")
@_probe
def healthz() -> Response:
    """Answer 200 as long as the process serves requests; touches no dependency."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
@_probe
def readyz() -> tuple[Response, int]:
    checks = run_checks(current_app)
    ready = all(check["ok"] for check in checks.values())
    return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503


def _holds_health_token() -> bool:
    expected: str | None = current_app.config.get("HEALTH_TOKEN")
    header = request.headers.get("Authorization", "")
    if not expected or header[:7].lower() != "bearer ":
        return False
    return hmac.compare_digest(header[7:].strip().encode(), expected.encode())


def _require_health_reader() -> None:
    """Let monitors with ``HEALTH_TOKEN`` and signed-in admins in; refuse everyone else."""
    if _holds_health_token():
        return
    if not current_user.is_authenticated:
        raise Unauthorized("Send HEALTH_TOKEN as a Bearer token, or sign in as an admin.")
    if not current_user.is_admin:
        raise Forbidden("Health details are for administrators.")


@blueprint.get("/health")
def health() -> tuple[Response, int]:
    _require_health_reader()
    checks = run_checks(current_app, details=True)
    ready = all(check["ok"] for check in checks.values())
    body: dict[str, Any] = {
        "status": "ok" if ready else "degraded",
        "version": __version__,
        "profile": current_app.config["SET2TRACKS_ENV"],
        "uptime_seconds": round(time.monotonic() - _STARTED, 1),
        "checks": checks,
    }
    return jsonify(body), 200 if ready else 503
