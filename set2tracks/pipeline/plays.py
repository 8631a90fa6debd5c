"""The one shape of "a track played from here to there" that the pipeline passes around.

Recognizers give plays; the tracklist stage merges them into the rows of a tracklist, which
are plays too (``track`` None for a stretch nobody identified); the save stage stores them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from set2tracks.sets.models import FoundBy


@dataclass(frozen=True)
class TrackRef:
    """What a recognizer knows of a track it heard: keys to find it in the catalogue, and tags.

    Two refs with a key in common name the same track. The save stage finds or creates the
    catalogue track by these keys (``tracks.services``).
    """

    title: str
    artist: str | None = None
    library_file_id: int | None = None
    shazam_key: str | None = None
    isrc: str | None = None
    album: str | None = None
    # What the music services say of it (Shazam when it recognised the track, then the
    # enrichment stage's Spotify and Apple Music lookups). The save stage fills the
    # catalogue track's empty columns from these.
    spotify_id: str | None = None
    apple_music_id: str | None = None
    label: str | None = None
    genres: tuple[str, ...] = ()
    release_date: str | None = None  # "YYYY", "YYYY-MM" or "YYYY-MM-DD", as the service gave it
    cover_url: str | None = None
    preview_url: str | None = None
    popularity: int | None = None  # Spotify's 0-100
    duration_seconds: float | None = None

    def same_track(self, other: TrackRef) -> bool:
        """Whether both refs name one recording (a key they share is equal)."""
        pairs = (
            (self.library_file_id, other.library_file_id),
            (self.shazam_key, other.shazam_key),
            (self.isrc, other.isrc),
        )
        return any(mine is not None and mine == theirs for mine, theirs in pairs)


@dataclass(frozen=True)
class Play:
    """A stretch of a set, in seconds from its start: the track heard there, or None."""

    start: float
    end: float
    track: TrackRef | None
    found_by: FoundBy | None = None
    confidence: float | None = None  # 0 to 1
    speed: float | None = None  # playback speed: 1.0 as released, 1.05 sped up 5 %
    pitch: float | None = None  # pitch factor: 1.0 unchanged

    @property
    def duration(self) -> float:
        return self.end - self.start

    def moved(self, start: float, end: float) -> Play:
        """Return this play with new edges."""
        return replace(self, start=start, end=end)
