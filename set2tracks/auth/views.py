"""Account pages: sign-in, registration, password reset, invites, the account page, admin."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    after_this_request,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import (
    current_user,
    decode_cookie,
    encode_cookie,
    login_required,
    login_user,
    logout_user,
)

from set2tracks.auth import View, limits, services
from set2tracks.auth.forms import (
    ChangePasswordForm,
    ConfirmEmailForm,
    ConfirmForm,
    DeleteAccountForm,
    InviteForm,
    LoginForm,
    PreferencesForm,
    RegisterForm,
    ResetPasswordForm,
    ResetRequestForm,
    TokenForm,
)
from set2tracks.auth.models import User
from set2tracks.errors import (
    DomainError,
    Forbidden,
    InvalidInput,
    Unauthorized,
    wants_problem_json,
)
from set2tracks.extensions import csrf, csrf_key, limiter, login_manager
from set2tracks.links import external_url
from set2tracks.perimeter import body_left_to_view

blueprint = Blueprint("auth", __name__)
logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Every sign-in attempt from one address, whichever accounts it tries.
LOGIN_ATTEMPT_LIMIT = "20 per 15 minutes"
REQUEST_LIMIT = "10 per hour"
# Session key: when this sign-in happened (epoch seconds); the remember cookie carries it too.
SIGNED_IN_AT = "_signed_in_at"


def _now() -> float:
    """Return the epoch time sign-in lifetimes are measured with (tests move it)."""
    return time.time()


def _lifetime_over(signed_in_at: float) -> bool:
    lifetime: timedelta = current_app.config["SESSION_ABSOLUTE_LIFETIME"]
    return _now() - signed_in_at > lifetime.total_seconds()


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    """Load the user of a session, or of a remember cookie (its id has three parts).

    A remember cookie of the old format (the session token alone) has no sign-in time: it
    takes the session path and, finding none, signs nobody in.
    """
    if "." in user_id:
        return _load_remembered(user_id)
    signed_in_at = session.get(SIGNED_IN_AT)
    if not isinstance(signed_in_at, int | float) or _lifetime_over(signed_in_at):
        # Too old, or from before sign-in times were kept (whatever its age): signed out.
        session.pop("_user_id", None)
        session.pop(SIGNED_IN_AT, None)
        cookie = request.cookies.get(current_app.config["REMEMBER_COOKIE_NAME"])
        remembered = decode_cookie(cookie) if cookie else None
        if cookie and (remembered is None or "." not in remembered):
            # An old-format (or forged) remember cookie can never sign in: drop it rather
            # than try it on every request. A current one is left for Flask-Login to try.
            session["_remember"] = "clear"
        return None
    return services.load_user(user_id)


def _load_remembered(value: str) -> User | None:
    """Sign a browser back in from its remember cookie, under a new session id."""
    session_token, _, rest = value.partition(".")
    signed_in_at, _, remember = rest.partition(".")
    user = None
    if signed_in_at.isdigit() and not _lifetime_over(int(signed_in_at)):
        user = services.user_for_remember_token(session_token, remember)
    if user is None:
        # Dead (signed out, rotated, too old): drop it rather than try it on every request.
        session.pop("_user_id", None)
        session["_remember"] = "clear"
        return None
    session["_user_id"] = session_token
    session[SIGNED_IN_AT] = int(signed_in_at)
    # The browser chose the session id it sent; a signed-in session gets one of ours.
    current_app.session_interface.regenerate(session)  # type: ignore[attr-defined]
    return user


@login_manager.unauthorized_handler
def _unauthorized() -> ResponseReturnValue:
    if wants_problem_json():
        raise Unauthorized("Sign in, or send a personal API token as a Bearer token.")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


@blueprint.before_app_request
def authenticate_request() -> None:
    """Sign API requests in by their Bearer token; hold every cookie request to its CSRF token.

    A Bearer token is never sent by a browser on its own, so token requests need no CSRF
    token; they are also never mixed with the session: the token alone decides who it is.
    """
    if request.routing_exception is not None:
        return  # a 404 or 405 is the answer, whatever the credentials
    header = request.headers.get("Authorization", "")
    if request.path.startswith("/api/") and header[:7].lower() == "bearer ":
        user = services.user_for_api_token(header[7:].strip())
        if user is None:
            raise Unauthorized("This API token is not valid: it may have been revoked.")
        g._login_user = user
        g.signed_in_by_token = True
        return
    if not body_left_to_view():
        protect_from_csrf()


def protect_from_csrf() -> None:
    """Refuse (400) a state change sent with cookies but without the session's CSRF token.

    Runs before every view; a view that reads its own body (uploads) calls it as it parses
    the body: once the fields before the file are read (the token must be among them, or in
    the ``X-CSRFToken`` header), before a byte of the file is stored.
    """
    if g.get("signed_in_by_token"):
        return
    if request.method not in SAFE_METHODS and current_app.config["WTF_CSRF_ENABLED"]:
        csrf.protect()


def admin_required(view: View) -> View:
    """Let only admins in: anonymous visitors are sent to sign in, others get 403."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.is_admin:
            raise Forbidden("This page is for administrators.")
        return view(*args, **kwargs)

    return guarded  # type: ignore[return-value]


def safe_next(target: str | None) -> str:
    """Return ``target`` if it is a path on this site, else the home page."""
    fallback = "/"
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return fallback
    if any(ord(char) < 32 or char == "\\" for char in target):
        return fallback
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else fallback


@blueprint.after_app_request
def _no_store_for_accounts(response: Response) -> Response:
    """Keep pages about an account out of every cache (browser history, shared proxies)."""
    # g and the session only: loading the user here could hit the database on an error page.
    user = g.get("_login_user")
    signed_in = "_user_id" in session or bool(user is not None and user.is_authenticated)
    if signed_in or request.blueprint == "auth" or request.path.startswith("/api/v1/me"):
        response.headers["Cache-Control"] = "no-store"
    return response


def _sign_in(user: User, *, remember: bool = False) -> None:
    """Sign ``user`` in under a new session id, with a remember cookie when asked.

    Flask-Login keeps the session id: a planted pre-login id must not survive sign-in, nor
    its CSRF token. The sign-in is recorded (one commit). The remember cookie holds the
    session token, the sign-in time (the absolute lifetime counts from it) and the account's
    remember token (a remembered browser's sign-out clears it).
    """
    login_user(user)
    signed_in_at = int(_now())
    session[SIGNED_IN_AT] = signed_in_at
    current_app.session_interface.regenerate(session)  # type: ignore[attr-defined]
    # A CSRF token from before sign-in may be known to whoever planted the browser's
    # cookies: the signed-in session gets a token of its own.
    session.pop(csrf_key(current_app), None)
    g.pop(csrf_key(current_app), None)
    remember_token = services.record_login(user.id, remember=remember)
    # Known to the account from now on (and again after a password change here).
    limits.remember_device(user)
    if remember_token is not None:
        value = f"{user.get_id()}.{signed_in_at}.{remember_token}"
        after_this_request(lambda response: _set_remember_cookie(response, value, signed_in_at))
    elif current_app.config["REMEMBER_COOKIE_NAME"] in request.cookies:
        session["_remember"] = "clear"


def _set_remember_cookie(response: Response, value: str, signed_in_at: int) -> Response:
    config = current_app.config
    lifetime = min(config["REMEMBER_COOKIE_DURATION"], config["SESSION_ABSOLUTE_LIFETIME"])
    response.set_cookie(
        config["REMEMBER_COOKIE_NAME"],
        encode_cookie(value),
        expires=signed_in_at + int(lifetime.total_seconds()),
        path="/",
        secure=config["REMEMBER_COOKIE_SECURE"],
        httponly=config["REMEMBER_COOKIE_HTTPONLY"],
        samesite=config["REMEMBER_COOKIE_SAMESITE"],
    )
    return response


def _sign_out() -> None:
    """Sign out and start over: a new id (the old one leaves the store), nothing kept.

    A remembered browser also kills its remember cookie: in the browser, and on the server
    for every copy of it.
    """
    cookie = request.cookies.get(current_app.config["REMEMBER_COOKIE_NAME"])
    remembered = current_user.id if cookie and current_user.is_authenticated else None
    logout_user()
    current_app.session_interface.regenerate(session)  # type: ignore[attr-defined]
    session.clear()
    g.pop(csrf_key(current_app), None)
    if cookie:
        # clear() wiped logout_user()'s note to Flask-Login to delete the cookie.
        session["_remember"] = "clear"
    if remembered is not None:
        services.forget_remembered(remembered)


def _text(field: Any) -> str:
    """Return a text field's value ("" when absent: validators ran before this)."""
    return str(field.data or "")


def _form_error(form: Any, error: DomainError) -> None:
    """Show a domain error on the form: on its fields when it names them, else on top."""
    placed = False
    for name, messages in error.fields.items():
        field = getattr(form, name, None)
        if field is not None and isinstance(messages, list):
            field.errors = [*field.errors, *messages]
            placed = True
    if not placed:
        form.form_errors.append(error.detail)


@blueprint.route("/login", methods=["GET", "POST"])
@limiter.limit(LOGIN_ATTEMPT_LIMIT, methods=["POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    status, retry_after = 200, None
    if form.validate_on_submit():
        attempt = limits.check_sign_in(_text(form.email), _text(form.password))
        if attempt.user is not None:
            _sign_in(attempt.user, remember=bool(form.remember.data))
            return redirect(safe_next(request.args.get("next")))
        retry_after = attempt.retry_after
        form.form_errors.append(attempt.refusal or "Wrong email or password.")
        status = 401 if retry_after is None else 429
    elif form.errors:
        status = 400
    response = Response(render_template("auth/login.html", form=form), status=status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@blueprint.post("/logout")
def logout() -> ResponseReturnValue:
    if not current_user.is_authenticated:
        # Nothing to end: no message, so no session is written for an anonymous visitor.
        return redirect(url_for("sets.index"))
    _sign_out()
    flash("You are signed out.")
    return redirect(url_for("sets.index"))


@blueprint.route("/register", methods=["GET", "POST"])
@limiter.limit(REQUEST_LIMIT, methods=["POST"])
def register() -> Any:
    form = RegisterForm()
    mode = current_app.config["SIGNUP_MODE"]
    status = 200
    if request.method == "GET" and request.args.get("invite"):
        form.invite.data = request.args["invite"][:100]
    if form.validate_on_submit():
        try:
            signed_in = services.register(
                _text(form.email),
                _text(form.display_name),
                _text(form.password),
                _text(form.invite),
            )
        except DomainError as error:
            _form_error(form, error)
            status = 403 if isinstance(error, Forbidden) else 400
        else:
            if signed_in is not None:
                _sign_in(signed_in)
                flash("Welcome to Set2Tracks!")
                return redirect(url_for("sets.index"))
            # One answer whether or not the address had an account: the inbox tells.
            return render_template("auth/register_sent.html", email=_text(form.email))
    if status == 200 and (form.errors or form.form_errors):
        status = 400
    return render_template("auth/register.html", form=form, mode=mode), status


@blueprint.route("/register/confirm", methods=["GET", "POST"])
@limiter.limit(REQUEST_LIMIT, methods=["POST"])
def confirm_email() -> Any:
    """Confirm a registration from its emailed link, choosing its password (a GET changes nothing).

    The link is the proof of the address: whoever opens it sets the password, so one typed
    at registration by someone else never signs in. The token rides in the query string,
    which the access log leaves out.
    """
    token = request.args.get("token", "")[:500]
    form = ConfirmEmailForm()
    try:
        services.user_for_confirmation_token(token)
    except DomainError as error:
        return render_template("auth/confirm_invalid.html", message=error.detail), 400
    status = 200
    if form.validate_on_submit():
        try:
            user = services.confirm_email(token, _text(form.password))
        except InvalidInput as error:
            if not error.fields:
                return render_template("auth/confirm_invalid.html", message=error.detail), 400
            _form_error(form, error)
        else:
            _sign_in(user)
            flash("Your email is confirmed. Welcome to Set2Tracks!")
            return redirect(url_for("sets.index"))
    if form.errors or form.form_errors:
        status = 400
    return render_template("auth/confirm_email.html", form=form), status


@blueprint.get("/invite/<code>")
def invite(code: str) -> Any:
    """Open the sign-up form for an invite, with its email filled in when it has one."""
    form = RegisterForm(invite=code[:100])
    email = services.invite_email(code[:100])
    if email:
        form.email.data = email
    elif current_app.config["SIGNUP_MODE"] == "invite":
        form.form_errors.append("This invite is not valid: it may have expired or been used.")
    return render_template("auth/register.html", form=form, mode="invite")


@blueprint.route("/reset-password", methods=["GET", "POST"])
@limiter.limit(REQUEST_LIMIT, methods=["POST"])
def reset_request() -> Any:
    form = ResetRequestForm()
    if form.validate_on_submit():
        services.request_password_reset(_text(form.email))
        # The same answer whether or not the address has an account.
        return render_template("auth/reset_sent.html")
    status = 400 if form.errors else 200
    return render_template("auth/reset_request.html", form=form), status


@blueprint.route("/reset-password/<token>", methods=["GET", "POST"])
@limiter.limit(REQUEST_LIMIT, methods=["POST"])
def reset_password(token: str) -> Any:
    form = ResetPasswordForm()
    try:
        services.user_for_reset_token(token)
    except DomainError as error:
        return render_template("auth/reset_invalid.html", message=error.detail), 400
    if form.validate_on_submit():
        try:
            user = services.reset_password(token, _text(form.password))
        except DomainError as error:
            _form_error(form, error)
        else:
            _sign_out()
            # The inbox proved the owner: this browser skips the account's cap from now on,
            # and the failures that had shut the account to new browsers are forgiven.
            limits.remember_device(user)
            limits.forgive_account(user)
            flash("Your password is changed and your API tokens are revoked. Sign in.")
            return redirect(url_for("auth.login"))
    status = 400 if form.errors or form.form_errors else 200
    return render_template("auth/reset_password.html", form=form), status


def _account_page(status: int = 200, **forms: Any) -> tuple[str, int]:
    defaults = {
        "password_form": ChangePasswordForm(prefix="password"),
        "preferences_form": PreferencesForm(prefix="preferences", obj=current_user.preferences),
        "token_form": TokenForm(prefix="token"),
        "delete_form": DeleteAccountForm(prefix="delete"),
        "confirm_form": ConfirmForm(),
    }
    return render_template(
        "auth/account.html",
        tokens=services.list_api_tokens(current_user.id),
        **(defaults | {"new_token": None} | forms),
    ), status


@blueprint.get("/account")
@login_required
def account() -> Any:
    return _account_page()


@blueprint.post("/account/password")
@login_required
def change_password() -> Any:
    form = ChangePasswordForm(prefix="password")
    if form.validate_on_submit():
        try:
            user = services.change_password(
                current_user.id,
                _text(form.current_password),
                _text(form.new_password),
                revoke_tokens=bool(form.revoke_tokens.data),
            )
        except DomainError as error:
            _form_error(form, error)
        else:
            # The old session token is dead everywhere; this browser signs in anew.
            _sign_in(user)
            flash("Your password is changed. Other devices are signed out.")
            return redirect(url_for("auth.account"))
    return _account_page(400, password_form=form)


@blueprint.post("/account/sign-out-everywhere")
@login_required
def sign_out_everywhere() -> ResponseReturnValue:
    services.sign_out_everywhere(current_user.id)
    _sign_out()
    flash("You are signed out on every device.")
    return redirect(url_for("auth.login"))


@blueprint.post("/account/preferences")
@login_required
def preferences() -> Any:
    form = PreferencesForm(prefix="preferences")
    if form.validate_on_submit():
        services.set_preferences(
            current_user.id,
            email_when_ready=form.email_when_ready.data,
            play_sound_when_ready=form.play_sound_when_ready.data,
            theme=form.theme.data,
        )
        flash("Preferences saved.")
        return redirect(url_for("auth.account"))
    return _account_page(400, preferences_form=form)


@blueprint.post("/account/tokens")
@login_required
def create_token() -> Any:
    form = TokenForm(prefix="token")
    if form.validate_on_submit():
        days = int(form.expires_in_days.data or 0) or None
        try:
            issued = services.create_api_token(current_user.id, _text(form.name), days=days)
        except DomainError as error:
            _form_error(form, error)
            return _account_page(error.status, token_form=form)
        # Shown once, in this very response: the plain token is stored nowhere.
        return _account_page(201, new_token=issued.secret)
    return _account_page(400, token_form=form)


@blueprint.post("/account/tokens/<id:token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> ResponseReturnValue:
    services.revoke_api_token(current_user.id, token_id)
    flash("Token revoked.")
    return redirect(url_for("auth.account"))


@blueprint.post("/account/delete")
@login_required
def delete_account() -> Any:
    form = DeleteAccountForm(prefix="delete")
    if form.validate_on_submit():
        try:
            services.delete_account(current_user.id, _text(form.password))
        except DomainError as error:
            _form_error(form, error)
        else:
            _sign_out()
            flash("Your account is deleted.")
            return redirect(url_for("sets.index"))
    return _account_page(400, delete_form=form)


@blueprint.route("/admin/invites", methods=["GET", "POST"])
@admin_required
def invites() -> Any:
    form = InviteForm()
    status, new_invite = 200, None
    if form.validate_on_submit():
        issued = services.create_invite(
            current_user.id, email=_text(form.email) or None, days=int(form.days.data)
        )
        # Shown once, in this very response: only the code's digest is stored.
        status, new_invite = 201, external_url("auth.invite", code=issued.secret)
        form = InviteForm(formdata=None)
    elif request.method == "POST":
        status = 400
    return render_template(
        "admin/invites.html",
        form=form,
        confirm_form=ConfirmForm(),
        invites=services.list_invites(),
        new_invite=new_invite,
    ), status


@blueprint.post("/admin/invites/<id:invite_id>/revoke")
@admin_required
def revoke_invite(invite_id: int) -> ResponseReturnValue:
    services.revoke_invite(invite_id)
    flash("Invite revoked.")
    return redirect(url_for("auth.invites"))
