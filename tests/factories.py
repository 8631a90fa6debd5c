"""Builders for every model, flushed into the test's transaction."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import factory
from factory.alchemy import SQLAlchemyModelFactory

from set2tracks.auth.models import ApiToken, Invite, User, UserPreferences
from set2tracks.extensions import db
from set2tracks.fingerprint.models import LibraryFile
from set2tracks.sets.models import (
    BrowsingHistory,
    Channel,
    DjSet,
    FoundBy,
    SetSource,
    SetTrack,
    Submission,
    SubmissionStatus,
)
from set2tracks.sets.services import search_document as set_search_document
from set2tracks.tracks.models import Genre, Label, RelatedTrack, Track
from set2tracks.tracks.services import search_document as track_search_document

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


class BaseFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"


class UserFactory(BaseFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"dj{n}@example.com")
    # A real scrypt hash is slow; tests that log in set their own.
    password_hash = "scrypt:not-a-real-hash"
    display_name = factory.Sequence(lambda n: f"DJ {n}")
    session_token = factory.LazyFunction(lambda: secrets.token_urlsafe(32))
    preferences = factory.LazyFunction(UserPreferences)
    # Accounts in tests have confirmed their email unless a test says otherwise.
    email_confirmed_at = factory.LazyFunction(lambda: datetime.now(UTC))


class InviteFactory(BaseFactory):
    class Meta:
        model = Invite

    code_hash = factory.LazyFunction(lambda: secrets.token_hex(32))
    expires_at = factory.LazyFunction(lambda: datetime.now(UTC) + timedelta(days=7))
    created_by = factory.SubFactory(UserFactory, is_admin=True)


class ApiTokenFactory(BaseFactory):
    class Meta:
        model = ApiToken

    user = factory.SubFactory(UserFactory)
    name = "laptop"
    token_hash = factory.LazyFunction(lambda: secrets.token_hex(32))
    prefix = factory.LazyFunction(lambda: secrets.token_hex(4))


class ChannelFactory(BaseFactory):
    class Meta:
        model = Channel

    youtube_channel_id = factory.Sequence(lambda n: f"UC{n:022d}")
    name = factory.Sequence(lambda n: f"Channel {n}")
    url = factory.LazyAttribute(lambda c: f"https://www.youtube.com/channel/{c.youtube_channel_id}")
    follower_count = 1000


class DjSetFactory(BaseFactory):
    class Meta:
        model = DjSet

    source = SetSource.YOUTUBE
    video_id = factory.Sequence(lambda n: f"vid{n:08d}")
    channel = factory.SubFactory(ChannelFactory)
    title = factory.Sequence(lambda n: f"Sunset set {n}")
    duration_seconds = 3600
    youtube_published_at = NOW
    is_published = True
    published_at = NOW
    search_document = factory.LazyAttribute(
        lambda s: set_search_document(s.title, s.channel.name if s.channel else None)
    )


class LabelFactory(BaseFactory):
    class Meta:
        model = Label

    name = factory.Sequence(lambda n: f"Label {n}")


class GenreFactory(BaseFactory):
    class Meta:
        model = Genre

    name = factory.Sequence(lambda n: f"Genre {n}")


class TrackFactory(BaseFactory):
    class Meta:
        model = Track

    shazam_key = factory.Sequence(lambda n: str(40000000 + n))
    title = factory.Sequence(lambda n: f"Track {n}")
    artist = factory.Sequence(lambda n: f"Artist {n}")
    label = None
    search_document = factory.LazyAttribute(
        lambda t: track_search_document(t.title, t.artist, t.label)
    )


class SetTrackFactory(BaseFactory):
    class Meta:
        model = SetTrack

    dj_set = factory.SubFactory(DjSetFactory)
    position = factory.Sequence(lambda n: n)
    track = factory.SubFactory(TrackFactory)
    start_seconds = 0.0
    end_seconds = 300.0
    confidence = 0.9
    found_by = FoundBy.SHAZAM


class RelatedTrackFactory(BaseFactory):
    class Meta:
        model = RelatedTrack

    track_id = factory.LazyAttribute(lambda r: TrackFactory().id)
    related_track_id = factory.LazyAttribute(lambda r: TrackFactory().id)
    position = 0


class SubmissionFactory(BaseFactory):
    class Meta:
        model = Submission

    source = SetSource.YOUTUBE
    video_id = factory.Sequence(lambda n: f"sub{n:08d}")
    user = factory.SubFactory(UserFactory)
    status = SubmissionStatus.QUEUED


class BrowsingHistoryFactory(BaseFactory):
    class Meta:
        model = BrowsingHistory

    user = factory.SubFactory(UserFactory)
    dj_set = factory.SubFactory(DjSetFactory)


class LibraryFileFactory(BaseFactory):
    class Meta:
        model = LibraryFile

    path = factory.Sequence(lambda n: f"/music/track-{n}.flac")
    content_hash = factory.LazyFunction(lambda: secrets.token_hex(32))
    size_bytes = 30_000_000
    title = factory.Sequence(lambda n: f"Promo {n}")
    artist = "Unreleased"
    duration_seconds = 412.5
