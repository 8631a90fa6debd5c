"""One attempt at a submission: the claim, the stages in order, and how the attempt ends.

Ownership. A job works on a submission only after ``claim`` won one conditional UPDATE
(queued -> running, the submission's ``job_id`` equal to the job's own, attempts left): two
workers handed the same job never both process it. Every later write of the attempt repeats
the condition (running, same job, same attempt number); when it no longer holds, an admin
cancelled the submission or the sweep gave it to another job, and the attempt stops there.

Transactions. Each stage commits ``stage``, ``progress`` and ``heartbeat_at`` in its own short
transaction and no transaction stays open while audio is decoded or matched: PostgreSQL ends
sessions idle in a transaction after a minute in production. The job reads what it needs
once, at the claim, into ``Claim``.

Stages that do not apply are recorded as skipped (in the attempt's note and the log), never
faked: for uploads, *fetch* (the file is already here) and *enrich* (no enrichment service
exists yet).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, and_, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from set2tracks.database import utcnow
from set2tracks.errors import DomainError
from set2tracks.extensions import db
from set2tracks.fingerprint.audio import AudioError, probe
from set2tracks.pipeline import Stage
from set2tracks.pipeline.pcm import DecodedAudio, decode_to_file
from set2tracks.pipeline.plays import Play
from set2tracks.pipeline.recognize import LibraryRecognizer, recognize
from set2tracks.pipeline.tracklist import build_tracklist
from set2tracks.sets.models import SetSource, Submission, SubmissionAttempt, SubmissionStatus
from set2tracks.sets.services import SetDetails, SubmissionNotRunning, save_submission_result

logger = logging.getLogger(__name__)

# The part of the progress bar each stage fills, in percent.
PROGRESS = {
    Stage.VET: (0, 2),
    Stage.FETCH: (2, 5),
    Stage.DECODE: (5, 30),
    Stage.RECOGNIZE: (30, 85),
    Stage.TRACKLIST: (85, 88),
    Stage.ENRICH: (88, 90),
    Stage.SAVE: (90, 100),
    Stage.NOTIFY: (100, 100),
}
# While a stage works, its progress reaches the database at most this often, and the
# heartbeat at least this often as long as the work moves.
PROGRESS_SECONDS = 2.0
HEARTBEAT_SECONDS = 15.0
# A running submission whose heartbeat is older than this, and whose job the queue no
# longer runs, was abandoned (a killed worker). Far above HEARTBEAT_SECONDS: the engine's
# last step (refining every play's edges) writes no progress for a while.
STALE_AFTER = timedelta(minutes=3)
# The sources the job processes; YouTube submissions wait for the next issue's fetch stage.
PROCESSED_SOURCES = (SetSource.UPLOAD,)

RUNNING = "running"  # SubmissionAttempt.outcome of an attempt under way


class Permanent(DomainError):
    """Processing cannot succeed however often it is tried; the detail tells the submitter why.

    ``internal`` is for admins and the log only (ffmpeg's own words name server paths).
    """

    status = 422
    title = "This set cannot be processed"

    def __init__(self, detail: str, *, internal: str | None = None) -> None:
        super().__init__(detail)
        self.internal = internal


class Unrecognised(Exception):
    """Nothing was recognised, or no recognizer could run: not the file's fault.

    The submission fails with ``reason`` (shown to the submitter) and keeps its upload, so an
    admin's retry works once the library is indexed or grown.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Stopped(Exception):
    """The attempt no longer owns its submission: it must stop without writing anything."""


class Cancelled(Stopped):
    """An admin cancelled the submission while the attempt ran."""


@dataclass(frozen=True)
class Claim:
    """What an attempt knows of its submission, read once when it was claimed."""

    submission_id: int
    job_id: str
    attempt: int  # this attempt's number, 1 for the first run
    runs: int  # the submission's ``attempts`` counter with this run (part of the ownership)
    upload_path: Path | None
    notify_by_email: bool


def claim(submission_id: int, job_id: str | None) -> Claim | None:
    """Take the submission for this job and open its attempt; None (logged) when not claimable."""
    if job_id is None:
        logger.error("submission %s: not run inside a job, nothing done", submission_id)
        return None
    now = utcnow()
    stale = now - STALE_AFTER
    result = cast(
        CursorResult[Any],
        db.session.execute(
            update(Submission)
            .where(
                Submission.id == submission_id,
                Submission.job_id == job_id,
                Submission.source.in_(PROCESSED_SOURCES),
                or_(
                    Submission.status == SubmissionStatus.QUEUED,
                    # The same job run again by RQ after its worker died mid-way.
                    and_(
                        Submission.status == SubmissionStatus.RUNNING,
                        or_(Submission.heartbeat_at.is_(None), Submission.heartbeat_at < stale),
                    ),
                ),
            )
            .values(
                status=SubmissionStatus.RUNNING,
                attempts=Submission.attempts + 1,
                started_at=now,
                heartbeat_at=now,
                finished_at=None,
                stage=None,
                progress=0,
                retry_at=None,
                reason=None,
                error=None,  # each attempt's own stays in its row
            )
            .execution_options(synchronize_session=False)
        ),
    )
    if result.rowcount != 1:
        db.session.rollback()
        _log_not_claimed(submission_id, job_id)
        return None
    submission = db.session.scalars(
        select(Submission)
        .where(Submission.id == submission_id)
        .execution_options(populate_existing=True)
    ).one()
    abandon_open_attempts(submission_id, "the worker running it stopped before it ended")
    number = 1 + (
        db.session.scalar(
            select(func.max(SubmissionAttempt.number)).where(
                SubmissionAttempt.submission_id == submission_id
            )
        )
        or 0
    )
    db.session.add(
        SubmissionAttempt(
            submission_id=submission_id,
            number=number,
            job_id=job_id,
            started_at=now,
            outcome=RUNNING,
        )
    )
    claimed = Claim(
        submission_id=submission_id,
        job_id=job_id,
        attempt=number,
        runs=submission.attempts,
        upload_path=Path(submission.upload_path) if submission.upload_path else None,
        notify_by_email=submission.notify_by_email,
    )
    db.session.commit()
    logger.info("submission %s: attempt %s started", submission_id, claimed.attempt)
    return claimed


def _log_not_claimed(submission_id: int, job_id: str) -> None:
    submission = db.session.get(Submission, submission_id)
    if submission is None:
        logger.warning("submission %s does not exist: job %s does nothing", submission_id, job_id)
    elif submission.source not in PROCESSED_SOURCES:
        logger.info(
            "submission %s is a %s link: its processing arrives with the next issue; it stays %s",
            submission_id,
            submission.source.value,
            submission.status.value,
        )
    elif submission.job_id != job_id:
        logger.info(
            "submission %s belongs to job %s, not to job %s: nothing done",
            submission_id,
            submission.job_id,
            job_id,
        )
    elif submission.status == SubmissionStatus.RUNNING:
        logger.info(
            "submission %s is being processed by a live attempt (heartbeat %s): nothing done",
            submission_id,
            submission.heartbeat_at,
        )
    else:
        logger.info(
            "submission %s is %s after %s attempt(s): nothing to do",
            submission_id,
            submission.status.value,
            submission.attempts,
        )
    db.session.rollback()


def abandon_open_attempts(submission_id: int, reason: str) -> None:
    """Mark attempts still shown as running as abandoned (no commit: the caller's transaction)."""
    db.session.execute(
        update(SubmissionAttempt)
        .where(
            SubmissionAttempt.submission_id == submission_id,
            SubmissionAttempt.outcome == RUNNING,
        )
        .values(outcome="abandoned", finished_at=utcnow(), reason=reason)
        .execution_options(synchronize_session=False)
    )


def retry_delays(runs_done: int, max_attempts: int, base_seconds: int) -> list[int]:
    """Return the wait before each retry left after ``runs_done`` runs of a submission.

    The run numbered n (from 1) that fails is retried after ``base_seconds x 4^(n-1)``;
    there are ``max_attempts`` runs in all (an admin's retry adds one more, without retries).
    """
    return [base_seconds * 4 ** (n - 1) for n in range(runs_done + 1, max_attempts)]


@dataclass
class Attempt:
    """The running attempt: writes its progress, checks at each write that it still owns the row."""

    claim: Claim
    folder: Path
    stage: Stage | None = None
    notes: list[str] = field(default_factory=list)
    _progress: int = -1
    _written_at: float = 0.0

    def owned(self) -> ColumnElement[bool]:
        """The condition under which this attempt may still write its submission."""
        return and_(
            Submission.id == self.claim.submission_id,
            Submission.job_id == self.claim.job_id,
            Submission.attempts == self.claim.runs,
            Submission.status == SubmissionStatus.RUNNING,
        )

    def enter(self, stage: Stage) -> None:
        """Record that ``stage`` starts (its share of the progress bar begins)."""
        self.stage = stage
        logger.info("submission %s: %s", self.claim.submission_id, stage.value)
        self._write(PROGRESS[stage][0], stage_changed=True)

    def skip(self, stage: Stage, why: str) -> None:
        """Record that ``stage`` does not apply to this submission, and why."""
        self.notes.append(f"{stage.value} skipped: {why}")
        logger.info("submission %s: %s skipped: %s", self.claim.submission_id, stage.value, why)

    def advance(self, done: float) -> None:
        """Report the share (0..1) of the current stage done; written now and then."""
        assert self.stage is not None
        low, high = PROGRESS[self.stage]
        percent = low + round((high - low) * min(max(done, 0.0), 1.0))
        elapsed = time.monotonic() - self._written_at
        if (percent > self._progress and elapsed >= PROGRESS_SECONDS) or (
            elapsed >= HEARTBEAT_SECONDS
        ):
            self._write(percent)

    def hold_for_save(self) -> None:
        """Lock the submission for the save and close the attempt, in the save's transaction.

        Nothing is committed here: the save service commits this with the tracklist, or
        rolls it back with it.
        """
        now = utcnow()
        if not self._update_owned(heartbeat_at=now):
            raise self._why_stopped()
        self._close_attempt("published", reason=self.note(), finished_at=now)

    def note(self) -> str | None:
        """The attempt's notes as one line (skipped stages, recognizers that could not listen)."""
        return "; ".join(self.notes)[:500] or None

    def _write(self, percent: int, stage_changed: bool = False) -> None:
        values: dict[str, Any] = {"progress": percent, "heartbeat_at": utcnow()}
        if stage_changed and self.stage is not None:
            values["stage"] = self.stage.value
        if not self._update_owned(**values):
            raise self._why_stopped()
        if stage_changed and self.stage is not None:
            self._close_attempt(None, stage=self.stage.value)
        db.session.commit()
        self._progress = percent
        self._written_at = time.monotonic()

    def _update_owned(self, **values: Any) -> bool:
        """Write ``values`` on the submission if this attempt still owns it; else roll back."""
        result = cast(
            CursorResult[Any],
            db.session.execute(
                update(Submission)
                .where(self.owned())
                .values(**values)
                .execution_options(synchronize_session=False)
            ),
        )
        if result.rowcount == 1:
            return True
        db.session.rollback()
        return False

    def _close_attempt(self, outcome: str | None, **values: Any) -> None:
        if outcome is not None:
            values["outcome"] = outcome
        db.session.execute(
            update(SubmissionAttempt)
            .where(
                SubmissionAttempt.submission_id == self.claim.submission_id,
                SubmissionAttempt.number == self.claim.attempt,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    def _why_stopped(self) -> Stopped:
        status = db.session.scalar(
            select(Submission.status).where(Submission.id == self.claim.submission_id)
        )
        db.session.rollback()
        if status == SubmissionStatus.CANCELLED:
            return Cancelled(f"submission {self.claim.submission_id} was cancelled")
        return Stopped(
            f"submission {self.claim.submission_id} is no longer this attempt's"
            f" (now {status.value if status else 'deleted'})"
        )

    # How an attempt ends when it does not publish. Each returns False when the attempt no
    # longer owned the submission (nothing was written).

    def end(self, status: SubmissionStatus, outcome: str, reason: str, error: str | None) -> bool:
        """End the submission as ``status`` and this attempt as ``outcome``."""
        now = utcnow()
        if not self._update_owned(
            status=status,
            reason=reason[:500],
            error=error,
            finished_at=now,
            heartbeat_at=now,
            retry_at=None,
        ):
            return False
        self._close_attempt(outcome, reason=reason[:500], error=error, finished_at=now)
        db.session.commit()
        return True

    def retry_later(self, delay: int, reason: str, error: str) -> bool:
        """Put the submission back in the queue until ``delay`` seconds from now."""
        now = utcnow()
        if not self._update_owned(
            status=SubmissionStatus.QUEUED,
            reason=reason[:500],
            error=error,
            retry_at=now + timedelta(seconds=delay),
            heartbeat_at=now,
        ):
            return False
        self._close_attempt("retrying", reason=reason[:500], error=error, finished_at=now)
        db.session.commit()
        return True

    def cancelled(self) -> None:
        """Close the attempt of a submission an admin cancelled meanwhile."""
        self._close_attempt(
            "cancelled", reason="cancelled while it was being processed", finished_at=utcnow()
        )
        db.session.commit()


def process_upload(attempt: Attempt) -> int:
    """Run the stages of an uploaded set; return the id of the set published."""
    config = current_app.config
    upload = vet_upload(attempt, config["UPLOAD_MIN_SECONDS"], config["SET_MAX_SECONDS"])
    attempt.skip(Stage.FETCH, "the uploaded file is already on the server")
    audio = decode_stage(attempt, upload, config["UPLOAD_MIN_SECONDS"], config["SET_MAX_SECONDS"])
    plays = recognize_stage(attempt, audio)
    attempt.enter(Stage.TRACKLIST)
    rows = build_tracklist(plays, audio.duration)
    attempt.skip(Stage.ENRICH, "no enrichment service (Spotify, Apple Music) is connected yet")
    attempt.enter(Stage.SAVE)
    attempt.hold_for_save()
    # No title: the save names an upload after its file.
    details = SetDetails(duration_seconds=audio.duration)
    try:
        return save_submission_result(attempt.claim.submission_id, rows, details)
    except SubmissionNotRunning as refused:
        raise attempt._why_stopped() from refused


@dataclass(frozen=True)
class Upload:
    path: Path
    duration: float  # as the file's headers say


def vet_upload(attempt: Attempt, min_seconds: float, max_seconds: float) -> Upload:
    """Probe the uploaded file again: real audio of an accepted duration, or ``Permanent``."""
    attempt.enter(Stage.VET)
    path = attempt.claim.upload_path
    if path is None or not path.is_file():
        raise Permanent("the uploaded file is no longer on the server: please upload it again")
    try:
        found = probe(path)
    except AudioError as error:
        raise Permanent(
            "the file is not audio we can read (or it is damaged)", internal=f"probe: {error}"
        ) from error
    if found.duration < min_seconds:
        raise Permanent(
            f"the recording is too short ({_clock(found.duration)});"
            f" sets of at least {_clock(min_seconds)} are accepted"
        )
    if found.duration > max_seconds:
        raise Permanent(
            f"the recording is too long ({_clock(found.duration)});"
            f" sets of at most {_clock(max_seconds)} are accepted"
        )
    return Upload(path, found.duration)


def decode_stage(
    attempt: Attempt, upload: Upload, min_seconds: float, max_seconds: float
) -> DecodedAudio:
    """Decode the upload to PCM in the attempt's folder, refusing more audio than allowed."""
    attempt.enter(Stage.DECODE)
    expected = max(upload.duration, 1.0)
    try:
        # One second over the limit: decoding that much proves the header understated it.
        audio = decode_to_file(
            upload.path,
            attempt.folder,
            max_seconds=max_seconds + 1,
            on_progress=lambda seconds: attempt.advance(seconds / expected),
        )
    except AudioError as error:
        raise Permanent(
            "the audio could not be decoded: the file may be damaged or cut short",
            internal=f"decode: {error}",
        ) from error
    if audio.duration > max_seconds:
        raise Permanent(
            f"the recording decodes to more than {_clock(max_seconds)} of audio"
            f" (its header says {_clock(upload.duration)}); longer sets are not accepted"
        )
    if audio.duration < min_seconds:
        raise Permanent(
            f"only {_clock(audio.duration)} of audio could be decoded;"
            f" sets of at least {_clock(min_seconds)} are accepted"
        )
    return audio


def recognize_stage(attempt: Attempt, audio: DecodedAudio) -> list[Play]:
    """Run the recognizer chain; ``Unrecognised`` when it identifies nothing at all."""
    attempt.enter(Stage.RECOGNIZE)
    recognizers = [LibraryRecognizer(attempt.folder)]
    recognition = recognize(audio, recognizers, attempt.advance)
    for name, why in recognition.skipped:
        attempt.notes.append(f"{name} recognizer skipped: {why}")
    if not any(play.track is not None for play in recognition.plays):
        if len(recognition.skipped) == len(recognizers):
            why = "; ".join(
                f"the {name} recognizer could not run: {why}" for name, why in recognition.skipped
            )
            raise Unrecognised(f"no track could be recognised ({why})")
        raise Unrecognised("no track was recognised in this recording")
    return recognition.plays


def _clock(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
