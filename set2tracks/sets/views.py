"""Pages for browsing sets, submitting them and following the queue."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from werkzeug.exceptions import RequestEntityTooLarge

from set2tracks.auth.views import admin_required
from set2tracks.browse import browse_params, render_browse
from set2tracks.errors import DomainError, TooManyRequests
from set2tracks.extensions import db
from set2tracks.links import external_url
from set2tracks.perimeter import reads_its_own_body
from set2tracks.sets import services, submissions
from set2tracks.sets.forms import LinkForm, UploadForm
from set2tracks.sets.models import ACTIVE_STATUSES, SetSource, Submission, SubmissionStatus
from set2tracks.sets.uploads import submit_form
from set2tracks.tracks.viewer import current_viewer

blueprint = Blueprint("sets", __name__)

SUBMISSIONS_PAGE_SIZE = 20
QUEUE_PAGE_SIZE = 30
PAGES = ("newest",)  # one order: browse_params wants the list


@blueprint.get("/")
@blueprint.get("/sets")
def index() -> str:
    viewer = current_viewer()
    return render_browse(
        "sets/index.html",
        lambda text, sort: services.browse_sets(text, sort, viewer),
        services.SORTS,
        services.DEFAULT_SORT,
        services.PAGE_SIZE,
    )


@blueprint.get("/sets/<id:set_id>")
def detail(set_id: int) -> str:
    viewer = current_viewer()
    dj_set = services.get_visible_set(set_id, viewer)
    page_url = external_url("sets.detail", set_id=set_id)
    # ?t=<seconds> deep-links into the set; anything else starts at the beginning.
    start = request.args.get("t", 0, type=int)
    mine = viewer.is_admin or (
        viewer.user_id is not None and dj_set.submitted_by_id == viewer.user_id
    )
    return render_template(
        "sets/detail.html",
        dj_set=dj_set,
        start=start if 0 < start < dj_set.duration_seconds else 0,
        json_ld=services.video_json_ld(dj_set, page_url),
        may_publish=mine and dj_set.source is SetSource.UPLOAD,
    )


@blueprint.post("/sets/<id:set_id>/publish")
@login_required
def publish(set_id: int) -> ResponseReturnValue:
    return _set_privacy(set_id, private=False)


@blueprint.post("/sets/<id:set_id>/unpublish")
@login_required
def unpublish(set_id: int) -> ResponseReturnValue:
    return _set_privacy(set_id, private=True)


def _set_privacy(set_id: int, *, private: bool) -> ResponseReturnValue:
    submissions.set_privacy(set_id, current_viewer(), private=private)
    if private:
        flash("This set is private: only you and the administrators can see it.")
    else:
        flash("This set is public: everyone can find it now.")
    return redirect(url_for("sets.detail", set_id=set_id), 303)


def _show_error(form: Any, error: DomainError, field: str) -> None:
    """Show a domain error under the field it names, else on top of the form."""
    messages = error.fields.get(field)
    if messages:
        getattr(form, field).errors = [*getattr(form, field).errors, *messages]
    else:
        form.form_errors.append(error.detail)


def _email_when_ready() -> bool:
    """Whether the signed-in user asked to be emailed by default (their preference)."""
    return bool(current_user.preferences and current_user.preferences.email_when_ready)


def _upload_form() -> UploadForm:
    # The file is gone once refused, and the form's fields were never kept: a fresh form.
    return UploadForm(formdata=None, notify=_email_when_ready())


def _submit_page(
    status: int,
    link_form: LinkForm | None = None,
    upload_form: UploadForm | None = None,
    retry_after: int | None = None,
) -> Response:
    notify = _email_when_ready()
    page = render_template(
        "sets/submit.html",
        link_form=link_form or LinkForm(formdata=None, notify=notify),
        upload_form=upload_form or UploadForm(formdata=None, notify=notify),
        upload_limit_mb=current_app.config["UPLOAD_MAX_BYTES"] / (1024 * 1024),
        quota=submissions.quota_for(current_user._get_current_object()),
    )
    response = Response(page, status=status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _after_submit(outcome: submissions.Submitted) -> ResponseReturnValue:
    """Send the submitter where the result is: the set, or the submission's page."""
    if outcome.set_id is not None:
        flash("This video is already published: here is its tracklist.")
        return redirect(url_for("sets.detail", set_id=outcome.set_id), 303)
    submission = db.session.get(Submission, outcome.submission_id)
    assert submission is not None  # the service just found or made it
    if outcome.created:
        flash("Submitted. This page follows its progress.")
    elif not submissions.may_read(submission, current_viewer()):
        flash(
            "Someone already submitted this video: its set will be published once it is processed."
        )
        return redirect(url_for("sets.submissions"), 303)
    else:
        flash("You already submitted this: it is being processed.")
    return redirect(url_for("sets.submission", submission_id=submission.id), 303)


@blueprint.route("/submit", methods=["GET", "POST"])
@login_required
def submit() -> ResponseReturnValue:
    """Show the two ways to submit a set; take a YouTube link (uploads post elsewhere)."""
    if request.method == "GET":
        return _submit_page(200)
    form = LinkForm()
    if not form.validate_on_submit():
        return _submit_page(400, link_form=form)
    try:
        outcome = submissions.submit_video(
            current_user.id, str(form.url.data), notify=bool(form.notify.data)
        )
    except DomainError as error:
        _show_error(form, error, "url")
        retry_after = error.retry_after if isinstance(error, TooManyRequests) else None
        return _submit_page(error.status, link_form=form, retry_after=retry_after)
    return _after_submit(outcome)


@blueprint.post("/submit/upload")
@reads_its_own_body
@login_required
def submit_upload() -> ResponseReturnValue:
    """Take an uploaded recording, streamed to disk once the quota allows it."""
    # Read before the upload streams in: later, the signed-in user's row would be loaded
    # again, in a transaction left open for as long as the upload lasts.
    user_id: int = current_user.id
    try:
        outcome = submit_form(user_id, links=False)
    except RequestEntityTooLarge as error:
        form = _upload_form()
        form.file.errors = [str(error.description)]
        return _submit_page(413, upload_form=form)
    except DomainError as error:
        form = _upload_form()
        _show_error(form, error, "file")
        retry_after = error.retry_after if isinstance(error, TooManyRequests) else None
        return _submit_page(error.status, upload_form=form, retry_after=retry_after)
    return _after_submit(outcome)


@blueprint.get("/submissions", endpoint="submissions")
@login_required
def submissions_list() -> str:
    page = db.paginate(
        submissions.user_submissions(current_user.id),
        page=browse_params(PAGES, PAGES[0]).page,
        per_page=SUBMISSIONS_PAGE_SIZE,
        max_per_page=SUBMISSIONS_PAGE_SIZE,
    )
    return render_template("sets/submissions.html", page=page, active=ACTIVE_STATUSES)


@blueprint.get("/submissions/<id:submission_id>")
@login_required
def submission(submission_id: int) -> str:
    found = submissions.get_submission(submission_id, current_viewer())
    return render_template("sets/submission.html", submission=found, active=ACTIVE_STATUSES)


def _status_filter(value: str | None) -> SubmissionStatus | None:
    """Return the status a tab names; anything else shows every submission."""
    return SubmissionStatus(value) if value in {s.value for s in SubmissionStatus} else None


@blueprint.get("/admin/submissions")
@admin_required
def queue() -> str:
    status = _status_filter(request.args.get("status"))
    page = db.paginate(
        submissions.queue(status),
        page=browse_params(PAGES, PAGES[0]).page,
        per_page=QUEUE_PAGE_SIZE,
        max_per_page=QUEUE_PAGE_SIZE,
    )
    counts = submissions.status_counts()
    return render_template(
        "admin/submissions.html",
        page=page,
        status=status,
        counts=counts,
        total=sum(counts.values()),
        active=ACTIVE_STATUSES,
        retryable=submissions.RETRYABLE,
    )


@blueprint.post("/admin/submissions/<id:submission_id>/retry")
@admin_required
def retry(submission_id: int) -> ResponseReturnValue:
    return _admin_action(submission_id, submissions.retry_submission, "queued again")


@blueprint.post("/admin/submissions/<id:submission_id>/cancel")
@admin_required
def cancel(submission_id: int) -> ResponseReturnValue:
    return _admin_action(submission_id, submissions.cancel_submission, "cancelled")


def _admin_action(submission_id: int, action: Any, done: str) -> ResponseReturnValue:
    """Run a queue action and go back to the tab it was asked from, saying how it went."""
    try:
        action(submission_id)
    except DomainError as error:
        if error.status == 404:
            raise
        flash(f"Submission {submission_id}: {error.detail}")
    else:
        flash(f"Submission {submission_id} {done}.")
    status = _status_filter(request.form.get("status"))
    return redirect(url_for("sets.queue", status=status.value if status else None), 303)
