"""API shapes of sets and tracklists."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from set2tracks.links import external_url
from set2tracks.pipeline import Stage
from set2tracks.schemas import BrowseArgs, Text, page_schema
from set2tracks.sets.models import FoundBy, SetSource, Submission, SubmissionStatus
from set2tracks.sets.services import DEFAULT_SORT, SORTS
from set2tracks.sets.submissions import MAX_LINK_LENGTH, may_read
from set2tracks.tracks.schemas import TrackSchema
from set2tracks.tracks.viewer import current_viewer

UPLOAD_HINT = "600 MB by default, UPLOAD_MAX_MB"


class ChannelRefSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)


class SetSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    source = fields.Enum(SetSource, by_value=True, required=True)
    video_id = fields.String(allow_none=True)
    channel = fields.Nested(ChannelRefSchema, allow_none=True)
    duration_seconds = fields.Integer(required=True)
    youtube_published_at = fields.DateTime(allow_none=True)
    published_at = fields.DateTime(allow_none=True)
    thumbnail_url = fields.String(allow_none=True)
    # As the caller sees them: private library tracks hidden from the caller are not counted.
    track_count = fields.Integer(attribute="shown_track_count", required=True)
    coverage = fields.Float(
        attribute="shown_coverage",
        required=True,
        metadata={"description": "Share of the set identified, 0 to 1"},
    )


class TracklistRowSchema(Schema):
    position = fields.Integer(required=True)
    start = fields.Float(attribute="start_seconds", required=True)
    end = fields.Float(attribute="end_seconds", required=True)
    track = fields.Nested(TrackSchema, allow_none=True, required=True)
    confidence = fields.Float(allow_none=True)
    speed = fields.Float(allow_none=True, metadata={"description": "Playback speed factor"})
    source = fields.Enum(FoundBy, by_value=True, attribute="found_by", allow_none=True)


class SetDetailSchema(SetSchema):
    tracklist = fields.List(fields.Nested(TracklistRowSchema), required=True)


class SetBrowseArgs(BrowseArgs):
    sort = fields.String(load_default=DEFAULT_SORT, validate=validate.OneOf(list(SORTS)))


SetPageSchema = page_schema("SetPage", SetSchema)


class SubmitVideoArgs(Schema):
    url = Text(
        required=True,
        validate=validate.Length(min=1, max=MAX_LINK_LENGTH),
        metadata={
            "description": "A YouTube link (watch?v=, youtu.be/, /live/, /shorts/, /embed/;"
            " www., m. and music. hosts) or an 11-character video id",
            "example": "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        },
    )
    notify = fields.Boolean(
        load_default=False, metadata={"description": "Email me when the set is ready"}
    )


class SubmitFormArgs(Schema):
    """The multipart (or URL-encoded) form: a recording in ``file``, or a link in ``url``."""

    file = fields.Raw(
        metadata={
            "type": "string",
            "format": "binary",
            "description": f"The recording (at most the server's upload limit, {UPLOAD_HINT})",
        }
    )
    url = Text(validate=validate.Length(max=MAX_LINK_LENGTH))
    notify = fields.String(
        metadata={
            "description": "Email me when the set is ready: 1, true, on, yes or y (any case);"
            " anything else, or no field, means no"
        }
    )
    csrf_token = fields.String(
        metadata={
            "description": "With a browser session: the session's CSRF token, sent before the"
            " file (or in the X-CSRFToken header)"
        }
    )


class SubmissionLinksSchema(Schema):
    self_url = fields.String(
        data_key="self",
        allow_none=True,
        required=True,
        metadata={"description": "This submission in the API; null when it is not yours"},
    )
    page = fields.String(allow_none=True, required=True, metadata={"description": "Its page"})
    set_url = fields.String(
        data_key="set",
        allow_none=True,
        required=True,
        metadata={"description": "The published set in the API, once there is one"},
    )


class SubmissionSchema(Schema):
    id = fields.Integer(required=True)
    source = fields.Enum(SetSource, by_value=True, required=True)
    video_id = fields.String(allow_none=True, required=True)
    upload_name = fields.String(allow_none=True, required=True)
    upload_size = fields.Integer(allow_none=True, required=True)
    duration_seconds = fields.Float(allow_none=True, required=True)
    status = fields.Enum(SubmissionStatus, by_value=True, required=True)
    stage = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "What the job is doing now: " + ", ".join(Stage)},
    )
    progress = fields.Integer(required=True, metadata={"description": "Percent, 0 to 100"})
    reason = fields.String(
        allow_none=True, required=True, metadata={"description": "Why it waits, failed or ended"}
    )
    retry_at = fields.DateTime(allow_none=True, required=True)
    attempts = fields.Integer(required=True, metadata={"description": "Runs of the job so far"})
    notify = fields.Boolean(attribute="notify_by_email", required=True)
    set_id = fields.Integer(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    finished_at = fields.DateTime(allow_none=True, required=True)
    links = fields.Nested(SubmissionLinksSchema, required=True)

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        if attr == "links":
            return submission_links(obj)
        return super().get_attribute(obj, attr, default)


class SubmissionProgressSchema(Schema):
    """Someone else's submission of the same video: only how far it is, nothing of theirs."""

    id = fields.Integer(required=True)
    status = fields.Enum(SubmissionStatus, by_value=True, required=True)
    stage = fields.String(allow_none=True, required=True)
    progress = fields.Integer(required=True, metadata={"description": "Percent, 0 to 100"})


class AttemptSchema(Schema):
    number = fields.Integer(required=True)
    started_at = fields.DateTime(required=True)
    finished_at = fields.DateTime(allow_none=True, required=True)
    outcome = fields.String(
        required=True,
        metadata={
            "description": "running, published, retrying, failed, discarded, cancelled or abandoned"
        },
    )
    stage = fields.String(allow_none=True, required=True, metadata={"description": "Reached"})
    reason = fields.String(allow_none=True, required=True)


class SubmissionDetailSchema(SubmissionSchema):
    attempt_log = fields.List(fields.Nested(AttemptSchema), required=True)


class SubmissionListArgs(BrowseArgs):
    class Meta:
        exclude = ("q",)


SubmissionPageSchema = page_schema("SubmissionPage", SubmissionSchema)


def submission_links(submission: Submission) -> dict[str, str | None]:
    """Return where a submission and its set are found, for the current user."""
    readable = may_read(submission, current_viewer())
    published = submission.set_id is not None and submission.status is SubmissionStatus.PUBLISHED
    return {
        "self_url": external_url("submissions_api.get_submission", submission_id=submission.id)
        if readable
        else None,
        "page": external_url("sets.submission", submission_id=submission.id) if readable else None,
        "set_url": external_url("sets_api.get_set", set_id=submission.set_id)
        if published
        else None,
    }
