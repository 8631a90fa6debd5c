"""Keeping the queue whole: the sweep of abandoned submissions, old leftovers, and when they run.

The sweep. A worker killed mid-job (SIGKILL, a lost machine) leaves its submission
``running``. RQ notices the job itself once its execution's heartbeat expires (about 90 s):
``StartedJobRegistry.cleanup`` re-queues it while it has retries left (the same job id, whose
claim then takes the submission back, its heartbeat being stale) or moves it to the failed
jobs. The sweep covers what RQ cannot know: a ``running`` submission whose heartbeat is older
than ``stages.STALE_AFTER`` and whose job the queue no longer runs (gone, ended, or started by
a worker that is dead) gets its attempt marked abandoned and is queued again under a new job
id, or fails once it has run ``MAX_ATTEMPTS`` times. A ``queued`` upload whose job
is gone (Redis emptied, a failed enqueue) is queued again. Both conditions together keep a
live attempt safe: it writes its heartbeat every few seconds while it works.
A ``published`` submission that asked for an email and is still at stage ``save`` past the
same cutoff lost its email job (the job moves it to ``notify`` once that job is queued): the
sweep queues it.

When it runs. When a worker starts (``worker.py``); in the embedded profile once when the
web process starts, where every ``running`` or ``queued`` row is from a process that is gone
(one process runs every job, and its in-memory queue died with it); and every
``MAINTENANCE_SECONDS`` through RQ's scheduler. RQ 3.0 offers ``Repeat`` (refused by
``queues.GuardedJob``: a job record asking to run again is not ours) and ``rq cron`` (a
separate process whose queues use RQ's pickle serializer): instead each run of
``run_maintenance`` first schedules the next with ``enqueue_at(..., unique=True)`` under a job id
naming the time slot, so any number of workers starting at once schedule it once, and a run
killed half-way has already scheduled its successor; a failed run is retried. Should Redis lose
the scheduled run, ``MaintainedWorker`` (what ``worker.py`` runs) schedules it again from RQ's
own periodic maintenance of each worker. The embedded profile uses a timer thread.

Leftovers. Each attempt deletes its folder under ``WORK_DIR``; a killed one cannot. Entries
older than ``LEFTOVER_AGE`` (far longer than any job may run) are deleted by the same runs.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from flask import Flask, current_app
from redis import Redis
from rq import Retry, Worker
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import CursorResult, and_, or_, select, update

from set2tracks import queues
from set2tracks.database import utcnow
from set2tracks.extensions import db, redis_client
from set2tracks.pipeline import Stage
from set2tracks.pipeline.jobs import SEND_SUBMISSION_EMAIL, put_on_queue
from set2tracks.pipeline.stages import (
    PROCESSED_SOURCES,
    RUNNING,
    STALE_AFTER,
    abandon_open_attempts,
)
from set2tracks.queues import job, retried
from set2tracks.sets.models import Submission, SubmissionAttempt, SubmissionStatus

logger = logging.getLogger(__name__)

RUN_MAINTENANCE = f"{__name__}.run_maintenance"
MAINTENANCE_SECONDS = 300
LEFTOVER_AGE = timedelta(days=1)
MAINTENANCE_TIMEOUT = 10 * 60

JobAlive = Callable[[str | None], bool]  # whether the queue still runs, or will run, a job


@dataclass
class Swept:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    emailed: list[int] = field(default_factory=list)


def sweep(job_alive: JobAlive, stale_after: timedelta = STALE_AFTER) -> Swept:
    """Queue again, or fail, the submissions whose job was lost; return which."""
    swept = Swept()
    cutoff = utcnow() - stale_after
    stale = or_(Submission.heartbeat_at.is_(None), Submission.heartbeat_at < cutoff)
    candidates = db.session.execute(
        select(Submission.id, Submission.status, Submission.job_id)
        .where(
            Submission.source.in_(PROCESSED_SOURCES),
            or_(
                and_(Submission.status == SubmissionStatus.RUNNING, stale),
                and_(Submission.status == SubmissionStatus.QUEUED, Submission.updated_at < cutoff),
            ),
        )
        .order_by(Submission.id)
    ).all()
    db.session.rollback()  # asking the queue about each job takes a moment
    for submission_id, status, job_id in candidates:
        if job_alive(job_id):
            continue
        if status == SubmissionStatus.RUNNING:
            _recover_running(submission_id, job_id, stale, swept)
        else:
            _requeue_queued(submission_id, job_id, swept)
    queue_lost_emails(cutoff, swept)
    return swept


def queue_lost_emails(cutoff: datetime, swept: Swept) -> None:
    """Queue the email of published submissions whose job stopped before queueing it.

    The job moves the stage from save to notify only once the email job is queued; one still
    at save since before ``cutoff`` lost it (a crash, Redis gone for a moment).
    """
    lost = db.session.scalars(
        select(Submission.id)
        .where(
            Submission.status == SubmissionStatus.PUBLISHED,
            Submission.notify_by_email.is_(True),
            Submission.stage == Stage.SAVE.value,
            Submission.updated_at < cutoff,
        )
        .order_by(Submission.id)
    ).all()
    db.session.rollback()
    for submission_id in lost:
        # The row stays locked from the stage change to the commit, so two sweeps at once
        # queue it once; a failed enqueue rolls the stage back for the next sweep.
        if not _changed(
            and_(
                Submission.id == submission_id,
                Submission.status == SubmissionStatus.PUBLISHED,
                Submission.stage == Stage.SAVE.value,
            ),
            stage=Stage.NOTIFY.value,
        ):
            continue
        try:
            queues.enqueue(SEND_SUBMISSION_EMAIL, submission_id)
        except Exception:
            db.session.rollback()
            raise
        db.session.commit()
        swept.emailed.append(submission_id)
        logger.warning("submission %s: its lost email is queued", submission_id)


def _recover_running(submission_id: int, job_id: str | None, stale: Any, swept: Swept) -> None:
    still_abandoned = and_(
        Submission.id == submission_id,
        Submission.status == SubmissionStatus.RUNNING,
        Submission.job_id == job_id if job_id else Submission.job_id.is_(None),
        stale,
    )
    stage, runs, priority, notify = db.session.execute(
        select(
            Submission.stage,
            Submission.attempts,
            Submission.priority,
            Submission.notify_by_email,
        ).where(Submission.id == submission_id)
    ).one()
    where = stage or "the start"
    if runs >= current_app.config["MAX_ATTEMPTS"]:
        reason = (
            f"the worker processing it stopped at {where}, and it has run {runs} times;"
            " an admin can try it again"
        )
        if not _changed(
            still_abandoned,
            status=SubmissionStatus.FAILED,
            reason=reason,
            finished_at=utcnow(),
            retry_at=None,
        ):
            return
        # The attempt that ended the submission reads as failed, like the job's own last one.
        db.session.execute(
            update(SubmissionAttempt)
            .where(
                SubmissionAttempt.submission_id == submission_id,
                SubmissionAttempt.outcome == RUNNING,
            )
            .values(outcome="failed", finished_at=utcnow(), reason=reason)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        swept.failed.append(submission_id)
        logger.warning(
            "submission %s: abandoned at %s, no attempt left: failed", submission_id, where
        )
        if notify:
            queues.enqueue(SEND_SUBMISSION_EMAIL, submission_id)
        return
    new_job_id = uuid.uuid4().hex
    reason = f"the worker processing it stopped at {where}: it is queued again"
    if not _changed(
        still_abandoned,
        status=SubmissionStatus.QUEUED,
        job_id=new_job_id,
        reason=reason,
        retry_at=None,
    ):
        return
    abandon_open_attempts(submission_id, f"the worker running it stopped at {where}")
    db.session.commit()
    put_on_queue(submission_id, new_job_id, _queue_for(priority or 0), runs)
    swept.requeued.append(submission_id)
    logger.warning(
        "submission %s: abandoned at %s; queued again as job %s", submission_id, where, new_job_id
    )


def _requeue_queued(submission_id: int, job_id: str | None, swept: Swept) -> None:
    new_job_id = uuid.uuid4().hex
    if not _changed(
        and_(
            Submission.id == submission_id,
            Submission.status == SubmissionStatus.QUEUED,
            Submission.job_id == job_id if job_id else Submission.job_id.is_(None),
        ),
        job_id=new_job_id,
    ):
        return
    priority, runs = db.session.execute(
        select(Submission.priority, Submission.attempts).where(Submission.id == submission_id)
    ).one()
    db.session.commit()
    put_on_queue(submission_id, new_job_id, _queue_for(priority or 0), runs)
    swept.requeued.append(submission_id)
    logger.warning(
        "submission %s: its job %s was lost; queued again as job %s",
        submission_id,
        job_id,
        new_job_id,
    )


def _changed(condition: Any, **values: Any) -> bool:
    """Apply ``values`` to the submission while ``condition`` holds (no commit)."""
    result = cast(
        CursorResult[Any],
        db.session.execute(
            update(Submission)
            .where(condition)
            .values(**values)
            .execution_options(synchronize_session=False)
        ),
    )
    if result.rowcount != 1:
        db.session.rollback()
        return False
    return True


def _queue_for(priority: int) -> str:
    return queues.HIGH if priority > 0 else queues.DEFAULT


# Whether a job still runs.


def rq_job_alive(connection: Redis) -> JobAlive:
    """Ask RQ whether a job will run or is running on a live worker."""
    host = socket.gethostname()

    def alive(job_id: str | None) -> bool:
        if not job_id:
            return False
        try:
            rq_job = Job.fetch(job_id, connection=connection, serializer=queues.SERIALIZER)
        except NoSuchJobError:
            return False
        status = rq_job.get_status(refresh=False)
        if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
            return True
        if status != JobStatus.STARTED:
            return False  # it ended (finished, failed, stopped, cancelled) without finishing
        return _worker_alive(connection, rq_job.worker_name, host)

    return alive


def _worker_alive(connection: Redis, name: str | None, host: str) -> bool:
    if not name:
        return False
    worker = Worker.find_by_key(
        f"{Worker.redis_worker_namespace_prefix}{name}",
        connection=connection,
        serializer=queues.SERIALIZER,
    )
    if worker is None:
        return False  # its registration expired: it stopped sending heartbeats
    if worker.hostname == host and worker.pid and worker.pid != os.getpid():
        # A worker on this machine: its process tells at once, without waiting for its
        # registration to expire (a SIGKILLed worker leaves it for another minute and a half).
        try:
            os.kill(worker.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return True


def never_alive(job_id: str | None) -> bool:
    """In a process that has just started, no job of an in-process queue is alive."""
    return False


# Leftovers.


def clean_work_dir(older_than: timedelta = LEFTOVER_AGE) -> list[str]:
    """Delete what in ``WORK_DIR`` was last changed over ``older_than`` ago; return the names."""
    folder = Path(current_app.config["WORK_DIR"])
    if not folder.is_dir():
        return []
    limit = time.time() - older_than.total_seconds()
    removed = []
    for entry in sorted(folder.iterdir()):
        try:
            if entry.lstat().st_mtime >= limit:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError as error:
            logger.warning("could not delete %s from WORK_DIR: %s", entry.name, error)
            continue
        removed.append(entry.name)
    if removed:
        logger.info("deleted %s leftover(s) from WORK_DIR", len(removed))
    return removed


# When it runs.


# A database or Redis blip must not cost a whole period of sweeping.
@job
@retried(30, 120)
def run_maintenance() -> None:
    """Recover abandoned submissions and delete old leftovers; schedule the next run first."""
    if current_app.config["JOB_RUNNER"] == "rq":
        connection = redis_client(current_app)
        schedule_maintenance(connection)
        sweep(rq_job_alive(connection))
    # In-process, every job of this process is alive or finished: the start-up sweep
    # recovered the rows an earlier process left.
    clean_work_dir()


def schedule_maintenance(connection: Redis, now: datetime | None = None) -> str | None:
    """Schedule the next periodic run on RQ; return its job id (None when already scheduled)."""
    intervals: tuple[int, ...] = queues.registered_job(RUN_MAINTENANCE).retry_intervals  # type: ignore[attr-defined]
    moment = (now or utcnow()).timestamp()
    slot = int(moment // MAINTENANCE_SECONDS + 1) * MAINTENANCE_SECONDS
    job_id = f"s2t-maintenance-{slot}"
    try:
        queues.rq_queue(queues.LOW, connection).enqueue_at(
            datetime.fromtimestamp(slot, UTC),
            queues.run_job,
            RUN_MAINTENANCE,
            job_id=job_id,
            unique=True,
            job_timeout=MAINTENANCE_TIMEOUT,
            description=RUN_MAINTENANCE,
            retry=Retry(max=len(intervals), interval=list(intervals)),
            failure_ttl=7 * 24 * 3600,
        )
    except DuplicateJobError:
        return None
    return job_id


class MaintainedWorker(Worker):
    """An RQ worker whose own periodic maintenance also puts ours back on the schedule.

    Redis losing its data (a restart without persistence, evicted keys) takes the one
    scheduled run with it; every worker re-schedules it each ``maintenance_interval``, and the
    slot's job id keeps that to one run per slot.
    """

    def run_maintenance_tasks(self) -> None:
        """Clean RQ's registries, then make sure the next periodic run is scheduled."""
        super().run_maintenance_tasks()
        try:
            scheduled = schedule_maintenance(self.connection)
            if scheduled:
                logger.info("periodic maintenance scheduled as %s", scheduled)
        except Exception:
            logger.exception("could not schedule the periodic maintenance; trying again later")


def on_worker_start(app: Flask) -> None:
    """Run the sweep and the clean-up once, and make sure the periodic run is scheduled."""
    with app.app_context():
        connection = redis_client(app)
        try:
            schedule_maintenance(connection)
            swept = sweep(rq_job_alive(connection))
            clean_work_dir()
        except Exception:
            # The worker is still useful (the next run retries): say it, do not stop.
            logger.exception("start-up maintenance failed")
            db.session.rollback()
            return
        finally:
            db.session.remove()
        if swept.requeued or swept.failed or swept.emailed:
            logger.info(
                "start-up sweep: %s queued again, %s failed, %s emailed",
                swept.requeued,
                swept.failed,
                swept.emailed,
            )


def start_embedded(app: Flask, every: float = MAINTENANCE_SECONDS) -> threading.Event:
    """In the embedded profile's web process: recover what the last process left, then keep time.

    Every ``running`` or ``queued`` upload is from a process that is gone: this one runs
    every job, and has run none yet. Then a timer queues the maintenance job ``every``
    seconds on the in-process runner; setting the event returned stops it.
    """
    stop = threading.Event()
    if app.config["JOB_RUNNER"] != "inline":
        return stop
    with app.app_context():
        try:
            sweep(never_alive, stale_after=timedelta(0))
            clean_work_dir()
        except Exception:
            logger.exception("start-up maintenance failed")
            db.session.rollback()
        finally:
            db.session.remove()

    def tick() -> None:
        while not stop.wait(every):
            with app.app_context():
                queues.enqueue(RUN_MAINTENANCE)

    threading.Thread(target=tick, name="set2tracks-maintenance", daemon=True).start()
    return stop
