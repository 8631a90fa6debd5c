"""Background jobs: queue names, ``enqueue()`` and the in-process runner.

Jobs are functions named by dotted path that take ids and plain values. In production they
go to RQ on Redis and ``worker.py`` runs them; in the embedded profile the very same
``run_job`` runs them on one in-process worker thread. There is no second implementation of
any job: both runners call ``run_job(path, *args)``.

Only registered jobs run: each job function carries ``@job``, which files it under its
dotted path, and ``enqueue`` and ``run_job`` refuse any other path. The RQ worker builds its
jobs with ``GuardedJob``, which calls ``run_job`` whatever function a job record in Redis
names: anyone able to write to Redis can then run a registered job with arguments of their
choosing, never ``os.system`` nor any other function of ours.

A job that raises is retried when it declares ``@retried(seconds, ...)``: RQ's ``Retry``
in production, timers on the in-process runner, after the same delays. A job that must not
be retried for a given failure (a permanent one) logs it and returns instead of raising.
"""

from __future__ import annotations

import importlib
import logging
import queue as stdlib_queue
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Flask, current_app
from redis import Redis
from rq import Queue, Retry, get_current_job
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from set2tracks.extensions import db, redis_client
from set2tracks.logs import current_job_id as logged_job_id
from set2tracks.logs import job_logging, request_id

logger = logging.getLogger(__name__)

HIGH = "high"
DEFAULT = "default"
LOW = "low"
QUEUE_NAMES = (HIGH, DEFAULT, LOW)
# Jobs and results travel as JSON: RQ's default, pickle, runs whatever code a job stored in
# Redis names, so anyone able to write to Redis could run code in the workers. Job args
# are ids and plain values, which JSON carries as they are. Queues and workers must agree.
SERIALIZER = JSONSerializer


JobFunction = TypeVar("JobFunction", bound=Callable[..., Any])
DEFAULT_RETRY_INTERVALS = (10, 60, 300)

# The modules whose ``@job`` functions make up the registry: imported (these names only,
# never one read from a job) before any job is looked up, so a fresh worker knows them all.
JOB_MODULES = (
    "set2tracks.auth.jobs",
    "set2tracks.pipeline.jobs",
    "set2tracks.pipeline.maintenance",
    "set2tracks.sets.jobs",
)
_JOBS: dict[str, Callable[..., Any]] = {}


class UnknownJob(ValueError):
    """A job path that names no registered job function."""


def job(function: JobFunction) -> JobFunction:
    """Register ``function`` as a job that ``enqueue`` and ``run_job`` accept by dotted path."""
    _JOBS[f"{function.__module__}.{function.__qualname__}"] = function
    return function


def registered_job(path: str) -> Callable[..., Any]:
    """Return the job function registered under ``path``; raise ``UnknownJob`` otherwise."""
    for module in JOB_MODULES:
        importlib.import_module(module)  # once per process; then a lookup in sys.modules
    function = _JOBS.get(path)
    if function is None:
        raise UnknownJob(f"{path!r} is not a registered job (see @job in set2tracks.queues)")
    return function


def retried(*intervals: int) -> Callable[[JobFunction], JobFunction]:
    """Retry the decorated job after each of ``intervals`` seconds, on whichever runner."""

    def declare(function: JobFunction) -> JobFunction:
        function.retry_intervals = tuple(intervals)  # type: ignore[attr-defined]
        return function

    return declare


def run_job(path: str, *args: Any) -> Any:
    """Run the registered job at ``path`` inside the current app context, then free the session."""
    try:
        function = registered_job(path)
    except UnknownJob:
        logger.error("refused to run job %r: it is not a registered job", path)
        raise
    rq_job = get_current_job()
    context: AbstractContextManager[None]
    if rq_job is not None:
        context = job_logging(rq_job.id, rq_job.meta.get("request_id"))
    else:
        context = nullcontext()  # the inline runner has set the context already
    try:
        with context:
            return function(*args)
    finally:
        db.session.remove()


RUN_JOB = f"{__name__}.run_job"


def current_job_id() -> str | None:
    """Return the id of the job this code runs in, on either runner; None outside jobs."""
    rq_job = get_current_job()
    if rq_job is not None:
        return str(rq_job.id)
    return logged_job_id()  # the inline runner tags its thread with the job it runs


class RefusedJob(Exception):
    """A job record in Redis that asks the worker for more than ``run_job``."""


class GuardedJob(Job):
    """The worker's RQ job: it only ever calls ``run_job``, never a function named in Redis.

    RQ acts on much of what a job record holds: it imports and calls the dotted names (the
    function, the callbacks), sends HTTP requests to its webhooks and runs it again for its
    repeats. Our jobs always name ``run_job`` and ask for none of the rest: a record asking
    for anything else was not written by ``enqueue``, and is refused before anything is
    imported. Webhooks are never sent, not even for the failure of the job refused.
    """

    @property
    def func(self) -> Callable[..., Any]:
        callbacks = [
            name
            for name in (
                self._success_callback_name,
                self._failure_callback_name,
                self._stopped_callback_name,
            )
            if name
        ]
        if self.func_name != RUN_JOB or self.instance is not None or callbacks:
            logger.error(
                "refused job %s: it asks for %r (callbacks %r); workers only run %s",
                self.id,
                self.func_name,
                callbacks,
                RUN_JOB,
            )
            raise RefusedJob(f"job {self.id} asks for {self.func_name!r}, not {RUN_JOB}")
        # Fields of RQ 3.0 that enqueue never sets and the worker acts on; restore() reads
        # them from the record. Counts only: a webhook's URL may hold credentials.
        asked = {
            name: count
            for name, count in (("webhooks", len(self.webhooks)), ("repeats", self.repeats_left))
            if count
        }
        if asked:
            logger.error(
                "refused job %s: it asks for %s; workers only run %s",
                self.id,
                ", ".join(f"{name} ({count})" for name, count in asked.items()),
                RUN_JOB,
            )
            raise RefusedJob(f"job {self.id} asks for {', '.join(asked)}")
        return run_job

    def send_webhooks(self, status: str | JobStatus, *, exc_string: str | None = None) -> None:
        """Send nothing: a webhook in a job record would make the worker call any address."""
        if self.webhooks:
            logger.warning("job %s: not sending the webhooks its record names", self.id)

    # Never import a callback named in Redis, not even when failing the job that names one.
    @property
    def success_callback(self) -> None:
        return None

    @property
    def failure_callback(self) -> None:
        return None

    @property
    def stopped_callback(self) -> None:
        return None


@dataclass
class InlineJob:
    id: str
    path: str
    args: tuple[Any, ...]
    request_id: str | None = None
    retry_intervals: list[int] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class InlineRunner:
    """Runs jobs in order on one daemon thread, for the embedded profile.

    With ``threaded=False`` (tests) jobs wait until ``join()`` runs them in the caller's
    thread: the tests' database connection must never be used by two threads at once.
    A job waiting for its retry still counts as unfinished for ``join()``.
    """

    def __init__(self, app: Flask, *, threaded: bool = True) -> None:
        self.app = app
        self.threaded = threaded
        self._jobs: stdlib_queue.Queue[InlineJob] = stdlib_queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._delayed: list[tuple[float, InlineJob]] = []  # (due, job) when not threaded

    def submit(
        self,
        path: str,
        args: tuple[Any, ...],
        job_id: str,
        retry_intervals: tuple[int, ...] = (),
    ) -> InlineJob:
        job = InlineJob(
            job_id, path, args, request_id=request_id(), retry_intervals=list(retry_intervals)
        )
        self._jobs.put(job)
        self._start_thread()
        return job

    def _start_thread(self) -> None:
        if not self.threaded:
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="set2tracks-jobs", daemon=True
                )
                self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every submitted job has run; return False on timeout."""
        if not self.threaded:
            return self._run_here(timeout)
        done = threading.Event()

        def wait() -> None:
            self._jobs.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def _run_here(self, timeout: float | None) -> bool:
        """Run queued jobs and their retries, when due, in the calling thread."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            while not self._jobs.empty():
                self._run(self._jobs.get())
            if not self._delayed:
                return True
            self._delayed.sort(key=lambda entry: entry[0])
            due, job = self._delayed[0]
            if deadline is not None and due > deadline:
                return False
            time.sleep(max(0.0, due - time.monotonic()))
            self._delayed.pop(0)
            self._jobs.put(job)

    def _work(self) -> None:
        while True:
            self._run(self._jobs.get())

    def _run(self, job: InlineJob) -> None:
        try:
            with self.app.app_context(), job_logging(job.id, job.request_id):
                job.result = run_job(job.path, *job.args)
        except BaseException as error:  # a failed job must not stop the runner
            if job.retry_intervals:
                self._retry_later(job, error)
                return
            job.error = error
            logger.exception("job %s (%s) failed", job.id, job.path)
        job.done.set()
        self._jobs.task_done()

    def _retry_later(self, job: InlineJob, error: BaseException) -> None:
        delay = job.retry_intervals.pop(0)
        logger.warning(
            "job %s (%s) failed (%s: %s), retrying in %s s",
            job.id,
            job.path,
            type(error).__name__,
            error,
            delay,
        )
        if not self.threaded:
            self._delayed.append((time.monotonic() + delay, job))
            self._jobs.task_done()
            return
        # task_done only once the retry is back in the queue: join() keeps waiting for it.
        timer = threading.Timer(delay, self._requeue, args=(job,))
        timer.daemon = True
        timer.start()

    def _requeue(self, job: InlineJob) -> None:
        self._jobs.put(job)
        self._jobs.task_done()
        self._start_thread()


def init_queues(app: Flask) -> None:
    if app.config["JOB_RUNNER"] == "inline":
        threaded = app.config.get("INLINE_JOBS_THREADED", True)
        app.extensions["s2t_inline_runner"] = InlineRunner(app, threaded=threaded)


def rq_queue(name: str = DEFAULT, connection: Redis | None = None) -> Queue:
    """Return the RQ queue ``name`` on the app's Redis."""
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=connection or redis_client(current_app), serializer=SERIALIZER)


def inline_runner() -> InlineRunner:
    runner: InlineRunner = current_app.extensions["s2t_inline_runner"]
    return runner


def enqueue(
    path: str,
    *args: Any,
    queue: str = DEFAULT,
    timeout: int | None = None,
    job_id: str | None = None,
    retries: int | None = None,
    retry_intervals: list[int] | None = None,
) -> str:
    """Put the job ``path(*args)`` on a queue after the caller's commit; return its id.

    Retries follow the job's ``@retried`` unless ``retries`` (and ``retry_intervals``) say
    otherwise. A path that names no registered job raises ``UnknownJob`` here, in the caller.
    """
    function = registered_job(path)
    intervals = _retry_intervals(function, retries, retry_intervals)
    job_id = job_id or uuid.uuid4().hex
    if current_app.config["JOB_RUNNER"] == "inline":
        inline_runner().submit(path, args, job_id, intervals)
        logger.info("job %s queued in-process: %s", job_id, path)
        return job_id
    job = rq_queue(queue).enqueue(
        run_job,
        path,
        *args,
        job_id=job_id,
        job_timeout=timeout or current_app.config["JOB_TIMEOUT"],
        description=path,
        retry=Retry(max=len(intervals), interval=list(intervals)) if intervals else None,
        meta={"request_id": request_id()},
        failure_ttl=7 * 24 * 3600,
    )
    logger.info("job %s queued on %s: %s", job.id, queue, path)
    return str(job.id)


def _retry_intervals(
    function: Callable[..., Any], retries: int | None, intervals: list[int] | None
) -> tuple[int, ...]:
    """Return the delay before each retry: the caller's choice, else the job's ``@retried``."""
    if retries is None:
        declared: tuple[int, ...] = getattr(function, "retry_intervals", ())
        return declared
    chosen = intervals or list(DEFAULT_RETRY_INTERVALS)
    return tuple(chosen[min(attempt, len(chosen) - 1)] for attempt in range(retries))
