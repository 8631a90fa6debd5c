"""gunicorn settings, read from the validated app configuration.

Validating here, in the master process, means a bad environment stops gunicorn with the
one configuration message and a non-zero exit, before any worker boots and dumps a
traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from set2tracks.config import ConfigError, load_config

try:
    _settings = load_config(Path(__file__).resolve().parent / "instance")
except ConfigError as _error:
    print(f"Error: {_error.format_message()}", file=sys.stderr)  # noqa: T201
    sys.exit(_error.exit_code)

_production = _settings["SET2TRACKS_ENV"] == "production"

bind = f"{'0.0.0.0' if _production else '127.0.0.1'}:{_settings['PORT']}"  # noqa: S104
# The embedded profile keeps jobs, limits and cache in memory: one process must own them.
workers = _settings["WEB_CONCURRENCY"] if _production else 1
threads = 4
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108
timeout = 30
graceful_timeout = 25
keepalive = 5
accesslog = None  # the app writes its own JSON access line per request
errorlog = "-"


def post_worker_init(worker: Any) -> None:
    """Embedded profile: the one web process runs every job; recover what the last one left."""
    if _production:
        return
    # Imported here: the master process never loads the application.
    from set2tracks.pipeline.maintenance import start_embedded

    start_embedded(worker.wsgi)
