"""Every model module, imported once so the metadata holds the whole schema."""

from set2tracks.auth.models import ApiToken, Invite, User, UserPreferences
from set2tracks.fingerprint.models import FingerprintSegment, LibraryFile
from set2tracks.sets.models import (
    BrowsingHistory,
    Channel,
    DjSet,
    SetTrack,
    Submission,
    SubmissionAttempt,
)
from set2tracks.tracks.models import Genre, Label, RelatedTrack, Track, track_genres

__all__ = [
    "ApiToken",
    "BrowsingHistory",
    "Channel",
    "DjSet",
    "FingerprintSegment",
    "Genre",
    "Invite",
    "Label",
    "LibraryFile",
    "RelatedTrack",
    "SetTrack",
    "Submission",
    "SubmissionAttempt",
    "Track",
    "User",
    "UserPreferences",
    "track_genres",
]
