"""Submission forms (Flask-WTF: every one carries its CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length

from set2tracks.sets.submissions import MAX_LINK_LENGTH

NOTIFY_LABEL = "Email me when it is done"


class LinkForm(FlaskForm):
    url = StringField(
        "YouTube link or video id",
        validators=[
            DataRequired(message="Paste a YouTube link or an 11-character video id."),
            Length(max=MAX_LINK_LENGTH, message="A link has at most 500 characters."),
        ],
    )
    # Both forms share the submit page: the ids differ, the field names do not.
    notify = BooleanField(NOTIFY_LABEL, id="link-notify")


class UploadForm(FlaskForm):
    """Rendered by Flask-WTF; its body is read by ``sets.uploads``, streamed to disk."""

    file = FileField("Recording of your set (MP3, FLAC, WAV, Ogg, Opus, M4A, AIFF…)")
    notify = BooleanField(NOTIFY_LABEL)
