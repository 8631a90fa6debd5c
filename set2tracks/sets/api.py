"""``/api/v1/sets`` and ``/api/v1/submissions``: sets, their tracklists, and submitting them."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request, url_for
from flask_login import current_user, login_required

from set2tracks.auth.api import SIGNED_IN
from set2tracks.errors import InvalidInput, NotFound
from set2tracks.extensions import db
from set2tracks.pagination import Page, cursor_page
from set2tracks.perimeter import reads_its_own_body
from set2tracks.schemas import ApiBlueprint
from set2tracks.sets import services, submissions
from set2tracks.sets.models import DjSet, Submission
from set2tracks.sets.schemas import (
    SetBrowseArgs,
    SetDetailSchema,
    SetPageSchema,
    SetSchema,
    SubmissionDetailSchema,
    SubmissionListArgs,
    SubmissionPageSchema,
    SubmissionSchema,
    SubmitFormArgs,
    SubmitVideoArgs,
)
from set2tracks.sets.uploads import receive_form
from set2tracks.tracks.viewer import current_viewer

blueprint = ApiBlueprint("sets_api", __name__, description="Published DJ sets")
submissions_blueprint = ApiBlueprint(
    "submissions_api", __name__, description="Submitting sets and following their processing"
)
TRUE_VALUES = frozenset({"1", "true", "on", "yes"})


@blueprint.get("")
@blueprint.arguments(SetBrowseArgs, location="query", as_kwargs=True)
@blueprint.response(200, SetPageSchema)
def list_sets(q: str, sort: str, cursor: str | None, limit: int) -> Page:
    """List published sets, searched by title and channel name."""
    return cursor_page(services.browse_sets(q, sort, current_viewer()), cursor, limit)


@blueprint.get("/<id:set_id>")
@blueprint.response(200, SetDetailSchema)
@blueprint.alt_response(404, response="NOT_FOUND", description="No such published set")
def get_set(set_id: int) -> DjSet:
    """Get one published set with its tracklist."""
    return services.get_visible_set(set_id, current_viewer())


@blueprint.post("/<id:set_id>/publish")
@login_required
@blueprint.response(200, SetDetailSchema)
@blueprint.alt_response(401, response="UNAUTHORIZED")
@blueprint.alt_response(404, response="NOT_FOUND", description="No set of yours by this id")
@blueprint.alt_response(409, response="CONFLICT", description="A YouTube set: always public")
@blueprint.doc(security=SIGNED_IN)
def publish_set(set_id: int) -> DjSet:
    """Make your uploaded set public: everyone may find it from now on."""
    submissions.set_privacy(set_id, current_viewer(), private=False)
    return services.get_visible_set(set_id, current_viewer())


@blueprint.post("/<id:set_id>/unpublish")
@login_required
@blueprint.response(200, SetDetailSchema)
@blueprint.alt_response(401, response="UNAUTHORIZED")
@blueprint.alt_response(404, response="NOT_FOUND", description="No set of yours by this id")
@blueprint.alt_response(409, response="CONFLICT", description="A YouTube set: always public")
@blueprint.doc(security=SIGNED_IN)
def unpublish_set(set_id: int) -> DjSet:
    """Make your uploaded set private again: only you (and admins) may see it."""
    submissions.set_privacy(set_id, current_viewer(), private=True)
    return services.get_visible_set(set_id, current_viewer())


SUBMIT_BODY = {
    "required": True,
    "description": "A YouTube link as JSON (or as a form), or a recording as multipart/form-data"
    " in the field `file`. The quota is checked before an upload is read.",
    "content": {
        "application/json": {
            "schema": SubmitVideoArgs,
            "example": {"url": "https://youtu.be/dQw4w9WgXcQ", "notify": True},
        },
        "multipart/form-data": {"schema": SubmitFormArgs},
        "application/x-www-form-urlencoded": {"schema": SubmitFormArgs},
    },
}
ALREADY_THERE = {
    "oneOf": [SubmissionSchema, SetSchema],
    "description": "A submission, or a set",
}


@submissions_blueprint.post("")
@reads_its_own_body
@login_required
@submissions_blueprint.response(202, SubmissionSchema, description="Submitted: being processed")
@submissions_blueprint.alt_response(
    200,
    schema=ALREADY_THERE,
    description="Already there: the published set of this video, or the submission of this"
    " video (or of this very file, from you) that is being processed",
)
@submissions_blueprint.alt_response(401, response="UNAUTHORIZED")
@submissions_blueprint.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
@submissions_blueprint.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
@submissions_blueprint.alt_response(422, response="UNPROCESSABLE_ENTITY")
@submissions_blueprint.doc(security=SIGNED_IN, requestBody=SUBMIT_BODY)
def create_submission() -> Any:
    """Submit a set: a YouTube link, or an uploaded recording (private until you publish it).

    Over a quota (submissions per hour, sets being processed at once) the answer is 429 with
    ``Retry-After``.
    """
    user_id: int = current_user.id
    if request.is_json:
        args = submissions_blueprint.ARGUMENTS_PARSER.parse(SubmitVideoArgs, location="json")
        outcome = submissions.submit_video(user_id, args["url"], notify=args["notify"])
    else:
        outcome = _submit_form(user_id)
    return _answer(outcome)


def _submit_form(user_id: int) -> submissions.Submitted:
    submissions.ensure_quota_left(user_id)
    form, upload = receive_form()
    url = form.get("url", "").strip()
    notify = form.get("notify", "").strip().lower() in TRUE_VALUES
    if upload is not None:
        if url:
            upload.path.unlink(missing_ok=True)
            raise InvalidInput("Send a file or a link, not both.", fields={"url": ["Not both."]})
        return submissions.submit_upload(user_id, upload, notify=notify)
    if url:
        return submissions.submit_video(user_id, url, notify=notify)
    message = "Send a recording in the field 'file', or a YouTube link in 'url'."
    raise InvalidInput(message, fields={"file": [message]})


def _answer(outcome: submissions.Submitted) -> Any:
    if outcome.set_id is not None:
        dj_set = db.session.scalar(
            services.visible_sets(current_viewer()).where(DjSet.id == outcome.set_id)
        )
        if dj_set is None:  # hidden between the two reads
            raise NotFound("This video's set is not available.")
        response: Response = jsonify(SetSchema().dump(dj_set))
        return response
    submission = db.session.get(Submission, outcome.submission_id)
    if not outcome.created:
        return submission, 200
    assert submission is not None  # created just now, in this session
    location = url_for("submissions_api.get_submission", submission_id=submission.id)
    return submission, 202, {"Location": location}


@submissions_blueprint.get("")
@login_required
@submissions_blueprint.arguments(SubmissionListArgs, location="query", as_kwargs=True)
@submissions_blueprint.response(200, SubmissionPageSchema)
@submissions_blueprint.alt_response(401, response="UNAUTHORIZED")
@submissions_blueprint.doc(security=SIGNED_IN)
def list_submissions(cursor: str | None, limit: int) -> Page:
    """List your submissions, newest first."""
    return cursor_page(submissions.user_submissions(current_user.id), cursor, limit)


@submissions_blueprint.get("/<id:submission_id>")
@login_required
@submissions_blueprint.response(200, SubmissionDetailSchema)
@submissions_blueprint.alt_response(401, response="UNAUTHORIZED")
@submissions_blueprint.alt_response(404, response="NOT_FOUND", description="None of yours")
@submissions_blueprint.doc(security=SIGNED_IN)
def get_submission(submission_id: int) -> Submission:
    """Get one of your submissions with its stage, progress and every attempt."""
    return submissions.get_submission(submission_id, current_viewer())
