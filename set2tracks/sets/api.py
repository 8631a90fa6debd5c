"""``/api/v1/sets`` and ``/api/v1/submissions``: sets, their tracklists, and submitting them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, jsonify, request, url_for
from flask_login import current_user, login_required

from set2tracks.auth.api import SIGNED_IN
from set2tracks.errors import PROBLEM_JSON, NotFound
from set2tracks.extensions import db
from set2tracks.pagination import Page, cursor_page
from set2tracks.perimeter import reads_its_own_body
from set2tracks.schemas import ApiBlueprint, ProblemSchema
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
    SubmissionProgressSchema,
    SubmissionSchema,
    SubmitFormArgs,
    SubmitVideoArgs,
)
from set2tracks.sets.uploads import submit_form
from set2tracks.tracks.viewer import current_viewer

blueprint = ApiBlueprint("sets_api", __name__, description="Published DJ sets")
submissions_blueprint = ApiBlueprint(
    "submissions_api", __name__, description="Submitting sets and following their processing"
)
View = TypeVar("View", bound=Callable[..., Any])


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


def _privacy_route(rule: str) -> Callable[[View], View]:
    """Route and document an uploaded set's publish or unpublish action (they share all)."""

    def register(view: View) -> View:
        decorators = (
            blueprint.post(rule),
            login_required,
            blueprint.response(200, SetDetailSchema),
            blueprint.alt_response(401, response="UNAUTHORIZED"),
            blueprint.alt_response(
                404, response="NOT_FOUND", description="No set of yours by this id"
            ),
            blueprint.alt_response(
                409, response="CONFLICT", description="A YouTube set: always public"
            ),
            blueprint.doc(security=SIGNED_IN),
        )
        for decorate in reversed(decorators):
            view = decorate(view)
        return view

    return register


def _set_privacy(set_id: int, *, private: bool) -> DjSet:
    submissions.set_privacy(set_id, current_viewer(), private=private)
    return services.get_visible_set(set_id, current_viewer())


@_privacy_route("/<id:set_id>/publish")
def publish_set(set_id: int) -> DjSet:
    """Make your uploaded set public: everyone may find it from now on."""
    return _set_privacy(set_id, private=False)


@_privacy_route("/<id:set_id>/unpublish")
def unpublish_set(set_id: int) -> DjSet:
    """Make your uploaded set private again: only you (and admins) may see it."""
    return _set_privacy(set_id, private=True)


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
    "oneOf": [SubmissionSchema, SubmissionProgressSchema, SetSchema],
    "description": "Your submission, someone else's (only how far it is), or a set",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}


def _problem(description: str) -> dict[str, Any]:
    return {"schema": ProblemSchema, "content_type": PROBLEM_JSON, "description": description}


@submissions_blueprint.post("")
@reads_its_own_body
@login_required
@submissions_blueprint.response(202, SubmissionSchema, description="Submitted: being processed")
@submissions_blueprint.alt_response(
    200,
    schema=ALREADY_THERE,
    description="Already there: the published set of this video; the submission of this"
    " video (or of this very file, from you) being processed, in full when it is yours, else"
    " only its id, status, stage and progress",
)
@submissions_blueprint.alt_response(
    400,
    **_problem(
        "A browser session's request without its CSRF token (for an upload: in the"
        " X-CSRFToken header or as the csrf_token field before the file), or a malformed form"
    ),
)
@submissions_blueprint.alt_response(401, response="UNAUTHORIZED")
@submissions_blueprint.alt_response(
    404, **_problem("The video's published set was hidden while the request was answered")
)
@submissions_blueprint.alt_response(
    413, **_problem("The upload is over the server's limit (nothing of it is kept)")
)
@submissions_blueprint.alt_response(415, **_problem("A body that is neither JSON nor a form"))
@submissions_blueprint.alt_response(
    422,
    **_problem(
        "Not a YouTube link, no file and no link, both, or a file that is not audio of a"
        " set's length"
    ),
)
@submissions_blueprint.alt_response(
    429,
    headers=RETRY_AFTER,
    **_problem(
        "Over a quota: submissions per hour, or sets being processed and uploaded at once;"
        " checked before an upload is read"
    ),
)
@submissions_blueprint.doc(security=SIGNED_IN, requestBody=SUBMIT_BODY)
def create_submission() -> Any:
    """Submit a set: a YouTube link, or an uploaded recording (private until you publish it).

    Over a quota (submissions per hour, sets being processed or uploaded at once) the
    answer is 429 with ``Retry-After``.
    """
    user_id: int = current_user.id
    if request.is_json:
        args = submissions_blueprint.ARGUMENTS_PARSER.parse(SubmitVideoArgs, location="json")
        outcome = submissions.submit_video(user_id, args["url"], notify=args["notify"])
    else:
        outcome = submit_form(user_id)
    return _answer(outcome)


def _answer(outcome: submissions.Submitted) -> Any:
    if outcome.set_id is not None:
        dj_set = db.session.scalar(
            services.visible_sets(current_viewer()).where(DjSet.id == outcome.set_id)
        )
        if dj_set is None:  # hidden between the two reads
            raise NotFound("This video's set is not available.")
        return _json(SetSchema().dump(dj_set))
    submission = db.session.get(Submission, outcome.submission_id)
    assert submission is not None  # the service just found or made it
    if outcome.created:
        location = url_for("submissions_api.get_submission", submission_id=submission.id)
        return submission, 202, {"Location": location}
    if not submissions.may_read(submission, current_viewer()):
        # Someone else's: that it exists and how far it is, not what they asked for.
        return _json(SubmissionProgressSchema().dump(submission))
    return submission, 200


def _json(data: Any) -> Response:
    response: Response = jsonify(data)
    return response


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
