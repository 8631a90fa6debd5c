"""Account pages: sign-in, registration, password reset, invites, the account page, admin."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
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
from flask_login import current_user, login_required, login_user, logout_user

from set2tracks.auth import services
from set2tracks.auth.forms import (
    ChangePasswordForm,
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
from set2tracks.errors import DomainError, Forbidden, Unauthorized, wants_problem_json
from set2tracks.extensions import csrf, limiter, login_manager
from set2tracks.links import external_url

blueprint = Blueprint("auth", __name__)

View = TypeVar("View", bound=Callable[..., Any])
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
FAILED_LOGIN_LIMIT = "5 per 15 minutes"
LOGIN_ATTEMPT_LIMIT = "20 per 15 minutes"
REQUEST_LIMIT = "10 per hour"


@login_manager.user_loader
def _load_user(session_token: str) -> User | None:
    return services.load_user(session_token)


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


def _sign_in(user: User, *, remember: bool = False) -> None:
    """Sign ``user`` in under a new session id.

    Flask-Login keeps the session id: a planted pre-login id must not survive sign-in.
    """
    login_user(user, remember=remember)
    current_app.session_interface.regenerate(session)  # type: ignore[attr-defined]


def _sign_out() -> None:
    """Sign out and start over: a new id (the old one leaves the store), nothing kept."""
    logout_user()
    current_app.session_interface.regenerate(session)  # type: ignore[attr-defined]
    session.clear()


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


def _login_failed(response: Response) -> bool:
    return bool(g.get("login_failed"))


def _account_key() -> str:
    email = (request.form.get("email") or "").strip().lower()[:254]
    return f"login-account:{email}"


@blueprint.route("/login", methods=["GET", "POST"])
@limiter.limit(LOGIN_ATTEMPT_LIMIT, methods=["POST"])
@limiter.limit(FAILED_LOGIN_LIMIT, methods=["POST"], deduct_when=_login_failed)
@limiter.limit(
    FAILED_LOGIN_LIMIT, methods=["POST"], key_func=_account_key, deduct_when=_login_failed
)
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        user = services.authenticate(_text(form.email), _text(form.password))
        if user is not None:
            _sign_in(user, remember=bool(form.remember.data))
            services.record_login(user.id)
            return redirect(safe_next(request.args.get("next")))
        g.login_failed = True
        form.form_errors.append("Wrong email or password.")
    status = 401 if g.get("login_failed") else 400 if form.errors else 200
    return render_template("auth/login.html", form=form), status


@blueprint.post("/logout")
def logout() -> ResponseReturnValue:
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
            user = services.register(
                _text(form.email),
                _text(form.display_name),
                _text(form.password),
                _text(form.invite),
            )
        except DomainError as error:
            _form_error(form, error)
            status = 403 if isinstance(error, Forbidden) else 400
        else:
            _sign_in(user)
            flash("Welcome to Set2Tracks!")
            return redirect(url_for("sets.index"))
    if status == 200 and (form.errors or form.form_errors):
        status = 400
    return render_template("auth/register.html", form=form, mode=mode), status


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
            services.reset_password(token, _text(form.password))
        except DomainError as error:
            _form_error(form, error)
        else:
            logout_user()
            flash("Your password is changed. Sign in with it.")
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
                current_user.id, _text(form.current_password), _text(form.new_password)
            )
        except DomainError as error:
            _form_error(form, error)
        else:
            # The old session token is dead everywhere; this browser signs in anew.
            _sign_in(user)
            flash("Your password is changed. Other devices are signed out.")
            return redirect(url_for("auth.account"))
    return _account_page(400, password_form=form)


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
        issued = services.create_api_token(current_user.id, _text(form.name))
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
