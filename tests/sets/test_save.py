"""Saving a processed submission: one transaction, a private upload set, counters in SQL."""

from __future__ import annotations

from flask import Flask

from set2tracks.extensions import db
from set2tracks.pipeline.plays import Play, TrackRef
from set2tracks.sets.models import DjSet, SetSource, SubmissionStatus
from set2tracks.sets.services import SetDetails, save_submission_result
from tests.factories import SubmissionFactory


def test_smoke(app: Flask) -> None:
    submission = SubmissionFactory(
        source=SetSource.UPLOAD,
        video_id=None,
        upload_path="/tmp/x.mp3",
        upload_name="Friday at home.mp3",
        status=SubmissionStatus.RUNNING,
    )
    rows = [Play(0, 100, TrackRef("A", "B", shazam_key="1")), Play(100, 200, None)]
    set_id = save_submission_result(submission.id, rows, SetDetails(200))
    dj_set = db.session.get(DjSet, set_id)
    assert dj_set is not None
    assert dj_set.title == "Friday at home"
