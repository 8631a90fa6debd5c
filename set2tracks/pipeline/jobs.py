"""The processing job: one per submission, enqueued after the commit that queued it.

``process_submission`` claims its submission, runs the stages (``stages.py``) in a folder of
its own under ``WORK_DIR`` (removed however the attempt ends) and ends the attempt one way:

- published: the set is saved; the upload is deleted; the submitter is emailed if asked;
- discarded at once on a ``Permanent`` problem of the file itself (not audio, too short or
  long, undecodable), with its reason; the upload is deleted;
- failed at once when nothing was recognised or no recognizer could run (an empty library
  is not the file's fault): the upload is kept for an admin's retry;
- on any other error, queued again after ``RETRY_BASE_SECONDS x 4^(n-1)`` (the runner's
  retry: RQ's ``Retry`` in production, a timer in-process) until the submission has run
  ``MAX_ATTEMPTS`` times, then failed; the upload is kept for an admin's retry, which is
  one more run;
- cancelled by an admin meanwhile: stops at the next stage, the upload is kept.

Every run leaves a ``SubmissionAttempt`` row: how far it got and how it ended.
"""

from __future__ import annotations

import logging
import shutil
import traceback
import uuid
from pathlib import Path
from typing import Any, cast

from flask import current_app, render_template
from sqlalchemy import CursorResult, update

from set2tracks import queues
from set2tracks.auth.models import User
from set2tracks.clients.mail import Email, deliver
from set2tracks.extensions import db
from set2tracks.links import external_url
from set2tracks.pipeline import Stage
from set2tracks.pipeline.stages import (
    Attempt,
    Cancelled,
    Claim,
    Permanent,
    Stopped,
    Unrecognised,
    claim,
    process_upload,
    retry_delays,
)
from set2tracks.queues import job, retried
from set2tracks.sets.models import DjSet, Submission, SubmissionStatus

logger = logging.getLogger(__name__)

PROCESS_SUBMISSION = f"{__name__}.process_submission"
SEND_SUBMISSION_EMAIL = f"{__name__}.send_submission_email"
# Internal errors kept on the submission and its attempt for admins: the end of the
# traceback says where it broke; the whole of it is in the job's log.
ERROR_CHARS = 4000


def enqueue_submission(submission_id: int) -> str:
    """Queue the job of a committed submission (premium users' on the high queue); return its id.

    The job id is committed on the submission before the job is queued: a worker that picks
    the job up at once finds it there (a job whose id is not the submission's does nothing).
    """
    submission = db.session.get(Submission, submission_id)
    if submission is None:
        raise LookupError(f"submission {submission_id} does not exist")
    queue = queues.HIGH if submission.priority > 0 else queues.DEFAULT
    submission.job_id = job_id = uuid.uuid4().hex
    runs_done = submission.attempts
    db.session.commit()
    return put_on_queue(submission_id, job_id, queue, runs_done)


def put_on_queue(submission_id: int, job_id: str, queue: str, runs_done: int) -> str:
    """Queue job ``job_id`` for the submission, with the retries its ``runs_done`` leave."""
    config = current_app.config
    delays = retry_delays(runs_done, config["MAX_ATTEMPTS"], config["RETRY_BASE_SECONDS"])
    return queues.enqueue(
        PROCESS_SUBMISSION,
        submission_id,
        queue=queue,
        timeout=config["JOB_TIMEOUT"],
        job_id=job_id,
        retries=len(delays),
        retry_intervals=delays,
    )


@job
def process_submission(submission_id: int) -> None:
    """Turn a submission into a published tracklist, stage by stage."""
    claimed = claim(submission_id, queues.current_job_id())
    if claimed is None:
        return
    folder = work_folder(claimed)
    attempt = Attempt(claimed, folder)
    try:
        folder.mkdir(parents=True, exist_ok=False)
        set_id = process_upload(attempt)
    except Cancelled:
        db.session.rollback()
        attempt.cancelled()
        logger.info("submission %s: cancelled; stopped at %s", submission_id, _stage(attempt))
        return
    except Stopped as why:
        db.session.rollback()
        logger.warning("submission %s: attempt %s stopped: %s", submission_id, claimed.attempt, why)
        return
    except Permanent as problem:
        db.session.rollback()
        _discard(attempt, problem.detail, problem.internal)
        return
    except Unrecognised as nothing:
        db.session.rollback()
        _fail_unrecognised(attempt, nothing.reason)
        return
    except Exception as error:
        db.session.rollback()
        if _retry_or_fail(attempt, error):
            raise  # the runner runs the job again after the delay just recorded
        return
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    logger.info("submission %s: published as set %s", submission_id, set_id)
    _finish_published(attempt)


def work_folder(claimed: Claim) -> Path:
    """The attempt's own folder under ``WORK_DIR`` (downloads, decoded audio, scratch)."""
    name = f"submission-{claimed.submission_id}-{claimed.attempt}-{claimed.job_id[:12]}"
    return Path(current_app.config["WORK_DIR"]) / name


def _stage(attempt: Attempt) -> str:
    return attempt.stage.value if attempt.stage else "the start"


def _discard(attempt: Attempt, reason: str, internal: str | None) -> None:
    claimed = attempt.claim
    if not attempt.end(SubmissionStatus.DISCARDED, "discarded", reason, internal):
        logger.warning(
            "submission %s: not discarded, no longer this attempt's", claimed.submission_id
        )
        return
    logger.info(
        "submission %s: discarded at %s: %s%s",
        claimed.submission_id,
        _stage(attempt),
        reason,
        f" ({internal})" if internal else "",
    )
    remove_upload(claimed.upload_path)
    if claimed.notify_by_email:
        queues.enqueue(SEND_SUBMISSION_EMAIL, claimed.submission_id)


def _fail_unrecognised(attempt: Attempt, why: str) -> None:
    # Not the file's fault (an empty or partial library): retrying at once cannot help, but an
    # admin's retry can once the library is indexed, so the upload stays.
    claimed = attempt.claim
    reason = f"{why}; the upload is kept and an admin can try it again"
    if not attempt.end(SubmissionStatus.FAILED, "failed", reason, None):
        logger.warning("submission %s: not failed, no longer this attempt's", claimed.submission_id)
        return
    logger.warning("submission %s: failed at %s: %s", claimed.submission_id, _stage(attempt), why)
    if claimed.notify_by_email:
        queues.enqueue(SEND_SUBMISSION_EMAIL, claimed.submission_id)


def _retry_or_fail(attempt: Attempt, error: Exception) -> bool:
    """Record a transient failure; return True when the runner is to run the job again."""
    claimed = attempt.claim
    config = current_app.config
    detail = "".join(traceback.format_exception(error))[-ERROR_CHARS:]
    where = _stage(attempt)
    runs = claimed.runs
    if runs < config["MAX_ATTEMPTS"]:
        delay = retry_delays(runs - 1, config["MAX_ATTEMPTS"], config["RETRY_BASE_SECONDS"])[0]
        reason = f"a temporary problem stopped processing at {where}: trying again soon"
        if attempt.retry_later(delay, reason, detail):
            logger.warning(
                "submission %s: attempt %s failed at %s (%s: %s); retry in %s s",
                claimed.submission_id,
                claimed.attempt,
                where,
                type(error).__name__,
                error,
                delay,
            )
            return True
        return False
    reason = f"processing failed {runs} times (last at {where}); an admin can try it again"
    if attempt.end(SubmissionStatus.FAILED, "failed", reason, detail):
        logger.error(
            "submission %s: failed for good after %s attempts",
            claimed.submission_id,
            runs,
            exc_info=error,
        )
        if claimed.notify_by_email:
            queues.enqueue(SEND_SUBMISSION_EMAIL, claimed.submission_id)
    return False


def _finish_published(attempt: Attempt) -> None:
    claimed = attempt.claim
    remove_upload(claimed.upload_path)
    if claimed.notify_by_email:
        # The stage stays "save" until the email job is queued: a crash (or a lost Redis) in
        # between leaves a published submission at "save" that asked for an email, which the
        # sweep queues later (``maintenance.queue_lost_emails``).
        try:
            queues.enqueue(SEND_SUBMISSION_EMAIL, claimed.submission_id)
        except Exception:
            logger.exception(
                "submission %s: could not queue its email; the sweep will", claimed.submission_id
            )
            return
    else:
        logger.info("submission %s: notify skipped: no email asked", claimed.submission_id)
    _mark_notified(claimed.submission_id)


def _mark_notified(submission_id: int) -> bool:
    """Move a published submission from stage save to notify; False when the sweep did first."""
    result = cast(
        CursorResult[Any],
        db.session.execute(
            update(Submission)
            .where(
                Submission.id == submission_id,
                Submission.status == SubmissionStatus.PUBLISHED,
                Submission.stage == Stage.SAVE.value,
            )
            .values(stage=Stage.NOTIFY.value)
            .execution_options(synchronize_session=False)
        ),
    )
    db.session.commit()
    return result.rowcount == 1


def remove_upload(path: Path | None) -> None:
    """Delete an uploaded file that is no longer needed (only ever inside ``UPLOAD_DIR``)."""
    if path is None:
        return
    uploads = Path(current_app.config["UPLOAD_DIR"]).resolve()
    target = path.resolve()
    if not target.is_relative_to(uploads):
        logger.error("not deleting %s: it is outside UPLOAD_DIR", target)
        return
    try:
        target.unlink(missing_ok=True)
    except OSError as error:
        logger.warning("could not delete the upload %s: %s", target.name, error)


# Emails are promised on the submit page ("email me when done"): a mail server's bad minute
# must not lose one.
@job
@retried(30, 120, 600)
def send_submission_email(submission_id: int) -> None:
    """Email the submitter that their set is published, failed or was discarded."""
    submission = db.session.get(Submission, submission_id)
    if submission is None or not submission.notify_by_email or submission.user_id is None:
        return
    user = db.session.get(User, submission.user_id)
    if user is None or not user.is_active:
        return
    name = submission.upload_name or "your set"
    if submission.status == SubmissionStatus.PUBLISHED and submission.set_id is not None:
        dj_set = db.session.get(DjSet, submission.set_id)
        if dj_set is None:
            return
        text = render_template(
            "pipeline/email/published.txt",
            user=user,
            name=name,
            dj_set=dj_set,
            link=external_url("sets.detail", set_id=dj_set.id),
        )
        subject = "Your set's tracklist is ready"
    elif submission.status in (SubmissionStatus.FAILED, SubmissionStatus.DISCARDED):
        text = render_template(
            "pipeline/email/not_processed.txt",
            user=user,
            name=name,
            submission=submission,
            link=external_url("sets.submission", submission_id=submission.id),
        )
        subject = "Your set could not be processed"
    else:
        logger.info("no email for submission %s: it is %s", submission_id, submission.status)
        return
    deliver(Email(to=user.email, subject=subject, text=text))
