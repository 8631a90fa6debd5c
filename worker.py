"""Run an RQ worker for Set2Tracks: ``python worker.py [--burst] [QUEUE ...]``.

One app is built here; each job runs in a forked work-horse, which first drops the
database connections it inherited. SIGTERM finishes the current job, then exits. Jobs are
built as ``GuardedJob``: a record in Redis naming any function but ``run_job``, or asking for
callbacks, webhooks or repeats, is refused, and no webhook is ever sent.
At start the worker sweeps abandoned submissions and schedules the periodic maintenance job
(``set2tracks.pipeline.maintenance``), and schedules it again each minute should Redis have
lost it; the scheduler started with the worker moves due jobs (retries, maintenance) onto
their queues.
"""

from __future__ import annotations

import argparse
import os
import sys

from set2tracks import create_app
from set2tracks.config import ConfigError
from set2tracks.extensions import db, redis_client
from set2tracks.pipeline.maintenance import MaintainedWorker, on_worker_start
from set2tracks.queues import QUEUE_NAMES, SERIALIZER, GuardedJob


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "queues",
        nargs="*",
        metavar="QUEUE",
        help=f"queues in priority order (default: {QUEUE_NAMES})",
    )
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--name", help="worker name (default: host and pid)")
    args = parser.parse_args(argv)
    unknown = set(args.queues) - set(QUEUE_NAMES)
    if unknown:
        parser.error(f"unknown queue(s) {sorted(unknown)}; choose from {QUEUE_NAMES}")
    queues = args.queues or list(QUEUE_NAMES)

    try:
        app = create_app()
    except ConfigError as error:
        print(f"Error: {error.format_message()}", file=sys.stderr)
        return error.exit_code
    if app.config["JOB_RUNNER"] != "rq":
        print(
            "Error: worker.py runs RQ jobs, which needs SET2TRACKS_ENV=production and REDIS_URL;"
            " the embedded profile runs jobs inside the web process.",
            file=sys.stderr,
        )
        return 2

    # Submissions a killed worker left, leftovers in WORK_DIR, the next periodic run.
    on_worker_start(app)
    with app.app_context():
        engines = list(db.engines.values())

        def forget_inherited_connections() -> None:
            # The horse must open its own connections, never reuse the parent's sockets.
            for engine in engines:
                engine.dispose(close=False)

        os.register_at_fork(after_in_child=forget_inherited_connections)
        worker = MaintainedWorker(
            queues,
            name=args.name,
            connection=redis_client(app),
            serializer=SERIALIZER,
            # Runs set2tracks.queues.run_job and nothing else, whatever a job in Redis names;
            # sends no webhook. Registries cleaned by this worker build their jobs with it too.
            job_class=GuardedJob,
            worker_ttl=60,
            maintenance_interval=60,
        )
        worker.work(
            burst=args.burst,
            with_scheduler=True,
            logging_level=app.config["LOG_LEVEL"],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
