"""The processing job: one per submission, enqueued after the commit that queued it.

Skeleton: the stages arrive with the pipeline work of issue 10; this module fixes the two
names the submission side relies on.
"""

from __future__ import annotations

import logging
import uuid

from flask import current_app

from set2tracks import queues
from set2tracks.extensions import db
from set2tracks.queues import job
from set2tracks.sets.models import Submission

logger = logging.getLogger(__name__)

PROCESS_SUBMISSION = f"{__name__}.process_submission"


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
    db.session.commit()
    return queues.enqueue(
        PROCESS_SUBMISSION,
        submission_id,
        queue=queue,
        timeout=current_app.config["JOB_TIMEOUT"],
        job_id=job_id,
    )


@job
def process_submission(submission_id: int) -> None:
    """Turn a submission into a published tracklist, stage by stage."""
    logger.warning("submission %s: the processing stages are not built yet", submission_id)
