"""Submitting sets: YouTube links and uploads, quotas, duplicates, the admin queue, publishing.

Services take ids and plain values, commit once at their end and raise ``DomainError``s whose
text is safe to show. Two identical submissions at once make one row: the partial unique
indexes ``uq_submissions_active_video_id`` and ``uq_submissions_active_upload`` decide, the
insert runs in a savepoint and the loser gets the winner's row. Quotas are counted with the
submitter's row locked, so two requests at once cannot both slip under them.

An upload's processing job is queued (``pipeline.jobs.enqueue_submission``) after the commit
that created its row. YouTube links are validated and stored now, and wait without a job
until the YouTube source exists (the next issue's work).

An admin's retry gives a failed, discarded or cancelled submission one more run: the
attempts budget is not reset, so a retry that fails again for a passing reason ends
``failed`` at once instead of starting another round of back-off retries; every attempt
stays in ``submission_attempts``.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import current_app
from sqlalchemy import ColumnElement, Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from set2tracks.auth.models import User
from set2tracks.database import utcnow
from set2tracks.errors import Conflict, InvalidInput, NotFound, TooManyRequests
from set2tracks.extensions import db
from set2tracks.fingerprint.audio import AudioError, probe
from set2tracks.pipeline.jobs import enqueue_submission
from set2tracks.sets.models import (
    ACTIVE_STATUSES,
    DjSet,
    SetSource,
    SetTrack,
    Submission,
    SubmissionStatus,
)
from set2tracks.sets.services import recount_channel
from set2tracks.sets.upload_slots import SlotKeeper, upload_slots
from set2tracks.tracks.services import Viewer, recount_track_sets

logger = logging.getLogger(__name__)

MAX_LINK_LENGTH = 500
VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{11}")
# youtube.com in all its common spellings, youtu.be short links, and the privacy-enhanced
# embed host. Exact names: "youtube.com.example.net" or "notyoutube.com" are not YouTube.
WATCH_HOSTS = frozenset(
    {
        "youtube.com",
        "www.youtube.com",
        "m.youtube.com",
        "music.youtube.com",
        "youtube-nocookie.com",
        "www.youtube-nocookie.com",
    }
)
SHORT_HOSTS = frozenset({"youtu.be", "www.youtu.be"})
PATH_PREFIXES = ("live", "shorts", "embed", "v", "e")
ACCEPTED_LINKS = (
    "Paste a YouTube link (youtube.com/watch?v=…, youtu.be/…, or a /live/, /shorts/ or"
    " /embed/ link) or an 11-character video id."
)
YOUTUBE_WAITING = (
    "Stored: YouTube links are processed once YouTube support is switched on."
    " Uploads are processed now."
)
RETRIED = "Queued again by an administrator."
CANCELLED = "Cancelled by an administrator."
SUBMITTER_LEFT = "Cancelled: its submitter deleted their account."
# The active-submissions quota frees up when one finishes: no way to know when, so a
# client is told to look again in a minute.
ACTIVE_RETRY_SECONDS = 60
QUOTA_WINDOW = timedelta(hours=1)
MAX_NAME_LENGTH = 255
RETRYABLE = (SubmissionStatus.FAILED, SubmissionStatus.DISCARDED, SubmissionStatus.CANCELLED)


@dataclass(frozen=True)
class Submitted:
    """What a submission request led to: a new submission, one already under way, or a set."""

    submission_id: int | None = None
    set_id: int | None = None
    created: bool = False


@dataclass(frozen=True)
class ReceivedFile:
    """An upload written to ``UPLOAD_DIR`` under a name the server chose."""

    path: Path
    name: str  # the client's file name, cleaned, for display only
    sha256: str
    size: int


@dataclass(frozen=True)
class Quota:
    per_hour: int
    active: int
    priority: int  # premium users' jobs go to the high queue


def parse_video_id(link: str) -> str:
    """Return the YouTube video id a link (or a bare id) names; raise ``InvalidInput`` if none."""
    text = link.strip()
    if VIDEO_ID.fullmatch(text):
        return text
    video_id = _video_id_from_url(text) if len(text) <= MAX_LINK_LENGTH else None
    if video_id is None:
        raise InvalidInput(ACCEPTED_LINKS, fields={"url": [ACCEPTED_LINKS]})
    return video_id


def _video_id_from_url(text: str) -> str | None:
    if not re.match(r"^(?:https?:)?//", text, re.IGNORECASE):
        if "://" in text:
            return None  # ftp://, javascript:// and the like
        text = "https://" + text
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower().rstrip(".")
        if parts.port not in (None, 80, 443) or parts.username or parts.password:
            return None
    except ValueError:  # a malformed port or IPv6 address
        return None
    segments = [segment for segment in parts.path.split("/") if segment]
    candidate: str | None = None
    if host in SHORT_HOSTS and len(segments) == 1:
        candidate = segments[0]
    elif host in WATCH_HOSTS:
        if segments == ["watch"]:
            values = parse_qs(parts.query).get("v", [])
            candidate = values[0] if values else None
        elif len(segments) == 2 and segments[0] in PATH_PREFIXES:
            candidate = segments[1]
    if candidate is not None and VIDEO_ID.fullmatch(candidate):
        return candidate
    return None


def clean_upload_name(filename: str | None) -> str:
    """Return a client's file name fit for display: no folders, no control characters."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name if not unicodedata.category(char).startswith("C"))
    name = " ".join(name.split())[:MAX_NAME_LENGTH]
    return name or "upload"


def quota_for(user: User) -> Quota:
    """Return the submission quotas of ``user`` (premium users get more, and priority)."""
    config = current_app.config
    if user.is_premium:
        return Quota(
            config["PREMIUM_SUBMISSIONS_PER_HOUR"], config["PREMIUM_ACTIVE_SUBMISSIONS"], 1
        )
    return Quota(config["SUBMISSIONS_PER_HOUR"], config["ACTIVE_SUBMISSIONS"], 0)


def _active_count(user_id: int) -> int:
    """Return how many of ``user_id``'s submissions are queued, waiting or running."""
    active = db.session.scalar(
        select(func.count())
        .select_from(Submission)
        .where(Submission.user_id == user_id, Submission.status.in_(ACTIVE_STATUSES))
    )
    return active or 0


def _too_many_active(active: int, uploading: int) -> TooManyRequests:
    held = f"{active} sets being processed"
    if uploading:
        held += f" and {uploading} being uploaded"
    return TooManyRequests(
        f"You have {held}, the most at once for your account:"
        " submit this one when one of them is done.",
        retry_after=ACTIVE_RETRY_SECONDS,
    )


def _quota_refusal(
    user_id: int, quota: Quota, now: datetime, *, active: int, uploading: int
) -> TooManyRequests | None:
    """Return why ``user_id`` may not submit now, or None when their quotas allow it.

    ``active``: their submissions being processed; ``uploading``: their uploads still
    arriving in other requests. Both take places in the active-submissions quota.
    """
    if active + uploading >= quota.active:
        return _too_many_active(active, uploading)
    recent = list(
        db.session.scalars(
            select(Submission.created_at)
            .where(Submission.user_id == user_id, Submission.created_at > now - QUOTA_WINDOW)
            .order_by(Submission.created_at)
        )
    )
    if len(recent) < quota.per_hour:
        return None
    # The count drops under the quota when enough of the oldest leave the hour's window.
    frees_at = recent[len(recent) - quota.per_hour] + QUOTA_WINDOW
    wait = max(1, int((frees_at - now).total_seconds()) + 1)
    return TooManyRequests(
        f"You have made {len(recent)} submissions in the last hour, the most for your"
        f" account: try again in {_duration_text(wait)} (at {frees_at:%H:%M} UTC).",
        retry_after=wait,
    )


@contextmanager
def upload_slot(user_id: int) -> Iterator[Callable[[], None]]:
    """Hold a place in ``user_id``'s quota while their upload arrives; 429 if none is left.

    Checked before a byte of the upload is read. The place is taken atomically (two
    uploads at once cannot both take the last one) and given back when the block ends;
    the submission that the upload becomes is then counted, locked, by ``submit_upload``.
    Yields a function to call now and then while the upload arrives, which keeps the
    place from expiring. The first look is without locks, and ends the read transaction,
    which must not stay open while an upload of minutes streams in.
    """
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("This account does not exist.")
    quota = quota_for(user)
    slots = upload_slots()
    active = _active_count(user_id)
    refusal = _quota_refusal(
        user_id, quota, utcnow(), active=active, uploading=slots.count(user_id)
    )
    _end_read_transaction()
    if refusal is not None:
        raise refusal
    slot = slots.take(user_id, limit=quota.active - active)
    if slot is None:  # another upload took the last place since the count
        raise _too_many_active(active, slots.count(user_id))
    try:
        yield SlotKeeper(slots, user_id, slot)
    finally:
        slots.release(user_id, slot)


def _end_read_transaction() -> None:
    """End the request's transaction, which holds reads only.

    Before locking: a stale SQLite snapshot cannot be upgraded to a write; before streaming
    an upload: PostgreSQL closes a session idle in a transaction for a minute.
    """
    if db.session.new or db.session.dirty or db.session.deleted:
        raise RuntimeError("submissions need a session without uncommitted changes")
    db.session.commit()


def _lock_submitter(user_id: int) -> User:
    """Lock the submitter's row until the commit, so quotas are counted one request at a time."""
    if db.session.get_bind().dialect.name == "postgresql":
        user = db.session.scalar(
            select(User)
            .where(User.id == user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    else:
        # SQLite has no row locks and ignores FOR UPDATE: a write takes the database's lock.
        db.session.execute(update(User).where(User.id == user_id).values(id=User.id))
        user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("This account does not exist.")
    return user


def _checked_quota(user_id: int) -> Quota:
    """Lock the submitter and return their quota, or raise ``TooManyRequests``.

    Uploads of theirs still arriving in other requests count as active: the caller's own
    upload, if any, has given its place back by now.
    """
    user = _lock_submitter(user_id)
    quota = quota_for(user)
    refusal = _quota_refusal(
        user_id,
        quota,
        utcnow(),
        active=_active_count(user_id),
        uploading=upload_slots().count(user_id),
    )
    if refusal is not None:
        raise refusal
    return quota


def _active(match: ColumnElement[bool]) -> Submission | None:
    return db.session.scalar(
        select(Submission).where(match, Submission.status.in_(ACTIVE_STATUSES))
    )


def _insert_once(submission: Submission, match: ColumnElement[bool]) -> Submission | None:
    """Insert ``submission``, or return the active one a unique index says is its twin."""
    try:
        with db.session.begin_nested():
            db.session.add(submission)
    except IntegrityError:
        twin = _active(match)
        if twin is None:
            raise  # some other constraint: a bug, not a race
        return twin
    return None


def submit_video(user_id: int, link: str, *, notify: bool = False) -> Submitted:
    """Submit a YouTube video by link or id; give the published set or active one if any."""
    video_id = parse_video_id(link)
    published = _published_set_id(video_id)
    if published is not None:
        return Submitted(set_id=published)
    same_video = Submission.video_id == video_id
    existing = _active(same_video)
    if existing is not None:
        return Submitted(submission_id=existing.id)
    _end_read_transaction()
    try:
        quota = _checked_quota(user_id)
        submission = Submission(
            source=SetSource.YOUTUBE,
            video_id=video_id,
            user_id=user_id,
            priority=quota.priority,
            notify_by_email=notify,
            status=SubmissionStatus.QUEUED,
            reason=YOUTUBE_WAITING,
        )
        twin = _insert_once(submission, same_video)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    if twin is not None:
        return Submitted(submission_id=twin.id)
    logger.info(
        "submission %s: YouTube video stored, waiting for the YouTube source", submission.id
    )
    return Submitted(submission_id=submission.id, created=True)


def _published_set_id(video_id: str) -> int | None:
    """Return the id of the set everyone may see for this video, if there is one."""
    return db.session.scalar(
        select(DjSet.id).where(
            DjSet.video_id == video_id, DjSet.is_published.is_(True), DjSet.is_hidden.is_(False)
        )
    )


def submit_upload(user_id: int, upload: ReceivedFile, *, notify: bool = False) -> Submitted:
    """Submit an uploaded recording once its headers prove it is audio of a set's length.

    The file becomes the submission's, or is removed: refused, a duplicate of an active
    upload of the same user, or on any error.
    """
    keep = False
    try:
        duration = _vetted_duration(upload)
        same_file = (Submission.user_id == user_id) & (Submission.upload_sha256 == upload.sha256)
        existing = _active(same_file)
        if existing is not None:
            return Submitted(submission_id=existing.id)
        _end_read_transaction()
        quota = _checked_quota(user_id)
        submission = Submission(
            source=SetSource.UPLOAD,
            upload_path=str(upload.path),
            upload_name=upload.name,
            upload_sha256=upload.sha256,
            upload_size=upload.size,
            duration_seconds=duration,
            user_id=user_id,
            priority=quota.priority,
            notify_by_email=notify,
            status=SubmissionStatus.QUEUED,
        )
        twin = _insert_once(submission, same_file)
        db.session.commit()
        if twin is not None:
            return Submitted(submission_id=twin.id)
        keep = True
    except BaseException:
        db.session.rollback()
        raise
    finally:
        if not keep:
            upload.path.unlink(missing_ok=True)
    enqueue_submission(submission.id)
    logger.info("submission %s: upload of %s bytes queued", submission.id, upload.size)
    return Submitted(submission_id=submission.id, created=True)


def _vetted_duration(upload: ReceivedFile) -> float:
    """Return the probed duration of an upload, or refuse it with a reason (422)."""
    if upload.size == 0:
        _refuse("The file is empty.")
    try:
        found = probe(upload.path)
    except AudioError as error:
        _refuse(f"This file cannot be used: {error}.")
    config = current_app.config
    shortest, longest = config["UPLOAD_MIN_SECONDS"], config["SET_MAX_SECONDS"]
    if found.duration < shortest:
        _refuse(
            f"This recording lasts {_duration_text(found.duration)}: a set must last at least"
            f" {_duration_text(shortest)}."
        )
    if found.duration > longest:
        _refuse(
            f"This recording lasts {_duration_text(found.duration)}: a set may last at most"
            f" {_duration_text(longest)}."
        )
    return found.duration


def _refuse(message: str) -> Any:
    raise InvalidInput(message, fields={"file": [message]})


def _duration_text(seconds: float) -> str:
    """Return a duration as people say it: "45 s", "12 min 30 s", "2 h 05 min"."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"
    return f"{secs} s"


def may_read(submission: Submission, viewer: Viewer) -> bool:
    """Whether ``viewer`` may read ``submission``: its submitter or an admin."""
    return viewer.is_admin or (viewer.user_id is not None and submission.user_id == viewer.user_id)


def get_submission(submission_id: int, viewer: Viewer) -> Submission:
    """Return a submission with its attempts for its submitter or an admin; else ``NotFound``."""
    submission = db.session.scalar(
        select(Submission)
        .where(Submission.id == submission_id)
        .options(joinedload(Submission.attempt_log), joinedload(Submission.dj_set))
    )
    if submission is None or not may_read(submission, viewer):
        raise NotFound("This submission does not exist.")
    return submission


def user_submissions(user_id: int) -> Select[Any]:
    """Return a query for a user's submissions, newest first."""
    return (
        select(Submission)
        .where(Submission.user_id == user_id)
        .order_by(Submission.created_at.desc(), Submission.id.desc())
    )


def queue(status: SubmissionStatus | None = None) -> Select[Any]:
    """Return a query for every user's submissions (of one status), newest first."""
    query = select(Submission).options(joinedload(Submission.user))
    if status is not None:
        query = query.where(Submission.status == status)
    return query.order_by(Submission.created_at.desc(), Submission.id.desc())


def status_counts() -> dict[SubmissionStatus, int]:
    """Return how many submissions each status holds (every status, zeros included)."""
    rows = db.session.execute(
        select(Submission.status, func.count()).group_by(Submission.status)
    ).all()
    counts = dict.fromkeys(SubmissionStatus, 0)
    counts.update({SubmissionStatus(status): count for status, count in rows})
    return counts


def retry_submission(submission_id: int) -> Submission:
    """Queue a failed, discarded or cancelled submission again (admins), with one more run."""
    submission = db.session.get(Submission, submission_id, with_for_update=True)
    if submission is None:
        raise NotFound("This submission does not exist.")
    if submission.status not in RETRYABLE:
        raise Conflict(
            f"Only failed, discarded or cancelled submissions can be retried: this one is"
            f" {submission.status.value}."
        )
    upload = submission.source is SetSource.UPLOAD
    published = None if upload else _published_set_id(submission.video_id or "")
    if published is not None:
        # Its set came from another submission meanwhile: a run would only make a twin.
        raise Conflict(
            f"This video's set is already published (set {published}): there is nothing to retry."
        )
    if upload and not Path(submission.upload_path or "").is_file():
        raise Conflict(
            "The uploaded file is gone (it is removed once a set is published or discarded):"
            " its submitter must upload it again."
        )
    submission.status = SubmissionStatus.QUEUED
    submission.stage = None
    submission.progress = 0
    submission.reason = RETRIED if upload else YOUTUBE_WAITING
    submission.error = None
    submission.retry_at = None
    submission.finished_at = None
    submission.job_id = None
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(
            "The same set is already being processed in another submission: retry this one"
            " once that one is done, if it is still needed."
        ) from None
    db.session.commit()
    if upload:
        enqueue_submission(submission_id)
    logger.info("submission %s queued again by an admin", submission_id)
    return submission


def cancel_submission(submission_id: int) -> Submission:
    """Cancel a queued, waiting or running submission (admins); a running job stops soon."""
    cancelled = db.session.execute(
        update(Submission)
        .where(Submission.id == submission_id, Submission.status.in_(ACTIVE_STATUSES))
        .values(
            status=SubmissionStatus.CANCELLED,
            reason=CANCELLED,
            retry_at=None,
            finished_at=utcnow(),
        )
        .returning(Submission.id)
    ).first()
    submission = db.session.get(Submission, submission_id, populate_existing=True)
    if submission is None:
        raise NotFound("This submission does not exist.")
    if cancelled is None:
        db.session.rollback()
        raise Conflict(
            f"Only queued, waiting or running submissions can be cancelled: this one is"
            f" {submission.status.value}."
        )
    db.session.commit()
    logger.info("submission %s cancelled by an admin", submission_id)
    return submission


def set_privacy(set_id: int, viewer: Viewer, *, private: bool) -> None:
    """Make an uploaded set private to its submitter (and admins), or public again.

    Only its submitter or an admin may; to anyone else the set does not exist. The track
    counters that count public sets are recomputed in the same transaction.
    """
    dj_set = db.session.get(DjSet, set_id, with_for_update=True)
    mine = dj_set is not None and (
        viewer.is_admin or (viewer.user_id is not None and dj_set.submitted_by_id == viewer.user_id)
    )
    if dj_set is None or not mine or not dj_set.is_published or dj_set.is_hidden:
        raise NotFound("This set does not exist or is not yours.")
    if dj_set.source is not SetSource.UPLOAD:
        raise Conflict("Sets from YouTube are public: only an uploaded recording can be private.")
    if dj_set.is_private != private:
        dj_set.is_private = private
        db.session.flush()
        recount_track_sets(_track_ids(set_id))
        if dj_set.channel_id is not None:
            recount_channel(dj_set.channel_id)
    db.session.commit()
    logger.info("set %s made %s", set_id, "private" if private else "public")


def _track_ids(set_id: int) -> Sequence[int]:
    return db.session.scalars(
        select(SetTrack.track_id)
        .where(SetTrack.set_id == set_id, SetTrack.track_id.is_not(None))
        .distinct()
    ).all()  # type: ignore[return-value]


def forget_submitter(user_id: int) -> list[Path]:
    """Cancel a leaving user's active submissions and delete their private sets (no commit).

    Returns the files of their uploads, for the caller to remove once its commit has made
    this final (``remove_uploads``). Private sets are theirs alone: their tracklists go with
    them (cascade) and the counters they fed are recomputed. Public sets stay, unattributed.
    """
    db.session.execute(
        update(Submission)
        .where(Submission.user_id == user_id, Submission.status.in_(ACTIVE_STATUSES))
        .values(
            status=SubmissionStatus.CANCELLED,
            reason=SUBMITTER_LEFT,
            retry_at=None,
            finished_at=utcnow(),
        )
    )
    private = db.session.execute(
        select(DjSet.id, DjSet.channel_id).where(
            DjSet.submitted_by_id == user_id, DjSet.is_private.is_(True)
        )
    ).all()
    set_ids = [row.id for row in private]
    if set_ids:
        track_ids = db.session.scalars(
            select(SetTrack.track_id)
            .where(SetTrack.set_id.in_(set_ids), SetTrack.track_id.is_not(None))
            .distinct()
        ).all()
        db.session.execute(delete(DjSet).where(DjSet.id.in_(set_ids)))
        recount_track_sets([track_id for track_id in track_ids if track_id is not None])
        for channel_id in {row.channel_id for row in private if row.channel_id is not None}:
            recount_channel(channel_id)
    paths = db.session.scalars(
        select(Submission.upload_path).where(
            Submission.user_id == user_id, Submission.upload_path.is_not(None)
        )
    ).all()
    logger.info(
        "user %s leaving: active submissions cancelled, %s private sets deleted",
        user_id,
        len(set_ids),
    )
    return [Path(path) for path in paths if path]


def remove_uploads(paths: Sequence[Path]) -> None:
    """Remove upload files (one already gone is fine)."""
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as error:  # a file left behind is swept later; the request succeeded
            logger.warning("upload %s not removed: %s", path.name, error.strerror)
