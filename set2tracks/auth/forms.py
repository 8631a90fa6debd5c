"""Account forms (Flask-WTF: every one carries its CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
)
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # stubs lag
from wtforms.validators import DataRequired, Email, Length, Optional

from set2tracks.auth.models import THEMES
from set2tracks.auth.passwords import MAX_LENGTH

EMAIL_LENGTH = 254
NAME_LENGTH = 80
TOKEN_NAME_LENGTH = 80


def _email_field(label: str = "Email") -> StringField:
    return StringField(
        label,
        validators=[
            DataRequired(message="Enter your email address."),
            Length(max=EMAIL_LENGTH, message="An email address has at most 254 characters."),
            Email(message="Enter a valid email address.", check_deliverability=False),
        ],
    )


def _password_field(label: str) -> PasswordField:
    # Long enough to say "too long" ourselves; the policy gives the real rules.
    return PasswordField(
        label,
        validators=[
            DataRequired(message="Enter a password."),
            Length(max=MAX_LENGTH, message=f"A password has at most {MAX_LENGTH} characters."),
        ],
    )


class LoginForm(FlaskForm):
    email = _email_field()
    password = _password_field("Password")
    remember = BooleanField("Keep me signed in on this device")


class RegisterForm(FlaskForm):
    email = _email_field()
    display_name = StringField(
        "Display name",
        validators=[
            DataRequired(message="Choose a display name."),
            Length(max=NAME_LENGTH, message="A display name has at most 80 characters."),
        ],
    )
    password = _password_field("Password (at least 12 characters)")
    invite = HiddenField(validators=[Optional(), Length(max=100)])


class ResetRequestForm(FlaskForm):
    email = _email_field()


class ResetPasswordForm(FlaskForm):
    password = _password_field("New password")


class ChangePasswordForm(FlaskForm):
    current_password = _password_field("Current password")
    new_password = _password_field("New password")
    revoke_tokens = BooleanField("Also revoke all my API tokens", default=True)


class PreferencesForm(FlaskForm):
    email_when_ready = BooleanField("Email me when a set I submitted is ready")
    play_sound_when_ready = BooleanField("Play a sound when a set I am watching is ready")
    theme = SelectField(
        "Theme", choices=[SelectChoice(theme, theme.capitalize()) for theme in THEMES]
    )


class TokenForm(FlaskForm):
    name = StringField(
        "Token name",
        validators=[
            DataRequired(message="Name the token, e.g. the script or device using it."),
            Length(max=TOKEN_NAME_LENGTH, message="A token name has at most 80 characters."),
        ],
    )
    expires_in_days = SelectField(
        "Valid for",
        choices=[
            SelectChoice("", "Until I revoke it"),
            SelectChoice("30", "30 days"),
            SelectChoice("90", "90 days"),
            SelectChoice("365", "1 year"),
        ],
        default="",
    )


class DeleteAccountForm(FlaskForm):
    password = _password_field("Your password, to confirm")


class InviteForm(FlaskForm):
    email = StringField(
        "Only for this email (optional)",
        validators=[
            Optional(),
            Length(max=EMAIL_LENGTH),
            Email(message="Enter a valid email address.", check_deliverability=False),
        ],
    )
    days = SelectField(
        "Valid for",
        choices=[
            SelectChoice("1", "1 day"),
            SelectChoice("7", "7 days"),
            SelectChoice("30", "30 days"),
        ],
        default="7",
    )


class ConfirmEmailForm(FlaskForm):
    """Confirm a registration from its emailed link, choosing the password it will sign in with."""

    password = _password_field("Choose your password (at least 12 characters)")


class ConfirmForm(FlaskForm):
    """A button that changes state: nothing but its CSRF token."""
