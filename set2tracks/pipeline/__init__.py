"""The processing job, stage by stage: vet, fetch, decode, recognize, tracklist, enrich, save.

One RQ job per submission (``jobs.py``) runs the stages in order, each updating the
submission's ``stage`` and ``progress``; a stage that does not apply to a source is skipped.
What flows between the stages is one shape, ``plays.Play``: a stretch of the set with the
track heard there, or with none.
"""

from __future__ import annotations

import enum


class Stage(enum.StrEnum):
    """What a submission is doing now, shown with its progress."""

    VET = "vet"
    FETCH = "fetch"
    DECODE = "decode"
    RECOGNIZE = "recognize"
    TRACKLIST = "tracklist"
    ENRICH = "enrich"
    SAVE = "save"
    NOTIFY = "notify"
