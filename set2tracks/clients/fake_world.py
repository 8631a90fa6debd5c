"""The offline music world behind the fake services: catalogue, DJ sets, their audio, and an ear.

``SET2TRACKS_FAKE_SERVICES=1`` (the demo) and the tests swap yt-dlp, Shazam, Spotify and Apple
Music for fakes that answer from this module, so a YouTube link goes through every stage of
the pipeline with no network, and the stages still decode and listen to real audio:

- ``CATALOGUE``: released tracks with every key and tag the real services give (Shazam key,
  ISRC, Spotify and Apple ids, album, label, genre, release date).
- ``fake_set(video_id)``: the DJ set "uploaded" as that video, generated deterministically
  from the id: its title, channel, chapters and schedule (which track plays from when to
  when, and from which point of the track).
- ``render(fake_set, path)``: that set's audio as a 16 kHz mono WAV file, tracks crossfaded.
- ``identify(samples, rate)``: what the fake Shazam hears in a window of audio.

The audio is self-describing, so the fakes need no shared state between processes (the web
process, a worker's forked job): each track is a tone whose pitch names it (``_tone_hz``)
plus a slow rising tone whose pitch says how far into the track the music is
(``_position_hz``). Decoding by ffmpeg, resampling and lossy encoding keep both.

Tracks outside the catalogue (``UNRELEASED``) sound like catalogue tracks but on pitches no
catalogue track uses: the fake Shazam does not know them, as the real one does not know an
unreleased promo. Fake sets play one, titled by a chapter, so a demo shows an unknown row.
"""

from __future__ import annotations

import hashlib
import math
import random
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Reproducible fixtures, never secrets: the standard generator is the right tool here.
# ruff: noqa: S311

RATE = 16_000  # rendered audio: Shazam's own analysis rate
CATALOGUE_SIZE = 36
UNRELEASED_SIZE = 4
CROSSFADE_SECONDS = 8.0
MIN_SET_SECONDS = 20 * 60.0  # over the YouTube stage's default 15-minute minimum
# Identity tones: 500 Hz, 550 Hz, ... one per catalogue track, then the unreleased ones.
_TONE_BASE_HZ = 500.0
_TONE_STEP_HZ = 50.0
# Position tone: rises 3 Hz per second of the track from 2,600 Hz (400 s reach 3,800 Hz,
# under the 4 kHz Nyquist limit of the engine's 8 kHz analysis rate).
_POSITION_BASE_HZ = 2600.0
_POSITION_HZ_PER_SECOND = 3.0
MAX_TRACK_SECONDS = 380.0
_TONE_LEVEL = 0.30
_POSITION_LEVEL = 0.18
_NOISE_LEVEL = 0.01
# A window is identified when its strongest identity tone stands this far above the median
# of the band: silence, noise and other music are not.
_PEAK_RATIO = 8.0
_LISTEN_SECONDS = 2.0  # the part of a window the ear reads (its start)

_ADJECTIVES = (
    "Midnight", "Neon", "Velvet", "Solar", "Hidden", "Electric", "Silver", "Golden",
    "Lunar", "Crystal", "Distant", "Endless",
)  # fmt: skip
_NOUNS = (
    "Drift", "Pulse", "Horizon", "Echoes", "Signal", "Rhythm", "Tides", "Voltage",
    "Mirage", "Gravity", "Circuit", "Bloom",
)  # fmt: skip
_ARTISTS = (
    "Kaia Sol", "The Night Shift", "Orbital Youth", "Mara Venn", "DJ Tessellate",
    "Low Frequency Club", "Ines Arrow", "Polar Motel", "Sable & Finch",
)  # fmt: skip
_LABELS = ("Offline Records", "Loopback Music", "Fixture Tone", "Sandbox Sound")
_GENRES = ("House", "Techno", "Deep House", "Melodic Techno", "Disco", "Electronica")
_CHANNELS = (
    ("UCfakeSetsDeepHouse0001", "Deep House Sessions"),
    ("UCfakeSetsWarehouse0002", "Warehouse Tapes"),
    ("UCfakeSetsRooftop000003", "Rooftop Radio"),
)


@dataclass(frozen=True)
class FakeTrack:
    """A released track as every fake service knows it."""

    number: int
    title: str
    artist: str
    album: str
    label: str
    genre: str
    release_date: str  # YYYY-MM-DD
    duration: float  # seconds
    isrc: str
    shazam_key: str
    apple_music_id: str
    spotify_id: str
    spotify_artist_id: str
    released: bool = True  # False: unreleased, unknown to every service

    @property
    def tone_hz(self) -> float:
        return _tone_hz(self.number)


@dataclass(frozen=True)
class ScheduledPlay:
    """A track played in a fake set: from ``start`` to ``end`` of the set, from ``offset`` of it.

    ``start`` and ``end`` are the middles of the crossfades with the neighbours (0 and the
    set's end for the first and last): where a person would put the boundary.
    """

    track: FakeTrack
    start: float
    end: float
    offset: float  # seconds into the track at ``start``


@dataclass(frozen=True)
class FakeChapter:
    start: float
    end: float
    title: str


@dataclass(frozen=True)
class FakeSet:
    """A DJ set as the fake YouTube publishes it."""

    video_id: str
    title: str
    description: str
    channel_id: str
    channel_name: str
    channel_followers: int
    upload_date: str  # YYYYMMDD, as yt-dlp gives it
    view_count: int
    like_count: int
    duration: float
    plays: tuple[ScheduledPlay, ...]
    chapters: tuple[FakeChapter, ...]


def _tone_hz(number: int) -> float:
    return _TONE_BASE_HZ + _TONE_STEP_HZ * number


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def _track(number: int, released: bool) -> FakeTrack:
    rng = random.Random(f"set2tracks-fake-track-{number}")
    title = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
    if not released:
        title = f"{title} (Unreleased Dub)"
    artist = rng.choice(_ARTISTS)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    return FakeTrack(
        number=number,
        title=title,
        artist=artist,
        album=f"{title.split(' (')[0]} EP",
        label=rng.choice(_LABELS),
        genre=rng.choice(_GENRES),
        release_date=f"{rng.randint(2012, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        duration=float(rng.randint(200, int(MAX_TRACK_SECONDS) - 20)),
        isrc=f"QZ{rng.choice('ABCDEFGHJK')}{rng.choice('ABCDEFGHJK')}{rng.randint(20, 25)}"
        + _digits(rng, 5),
        shazam_key=str(400_000_000 + number * 7919),
        apple_music_id=str(1_600_000_000 + number * 104_729),
        spotify_id="".join(rng.choice(alphabet) for _ in range(22)),
        spotify_artist_id="".join(
            random.Random(f"set2tracks-fake-artist-{artist}").choice(alphabet) for _ in range(22)
        ),
        released=released,
    )


CATALOGUE: tuple[FakeTrack, ...] = tuple(_track(n, True) for n in range(CATALOGUE_SIZE))
UNRELEASED: tuple[FakeTrack, ...] = tuple(
    _track(CATALOGUE_SIZE + n, False) for n in range(UNRELEASED_SIZE)
)
_BY_NUMBER = {track.number: track for track in (*CATALOGUE, *UNRELEASED)}


def by_shazam_key(key: str) -> FakeTrack | None:
    """Return the catalogue track with this Shazam key."""
    return next((track for track in CATALOGUE if track.shazam_key == key), None)


def fake_set(video_id: str, *, plays: int | None = None) -> FakeSet:
    """Return the set the fake YouTube serves as ``video_id``: the same for the same id.

    Seven to nine tracks (or ``plays``), each 2-3 minutes, some started a little into the
    track as DJs do, one of them unreleased; about 20 minutes or more in all. Its chapters
    (one per play, 5 or more) name every play, the unreleased one included.
    """
    seed = int.from_bytes(hashlib.sha256(video_id.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    count = plays if plays is not None else rng.randint(7, 9)
    picked = rng.sample(CATALOGUE, count - 1)
    picked.insert(rng.randint(1, count - 2) if count > 2 else 0, rng.choice(UNRELEASED))
    lengths = [rng.uniform(130.0, 200.0) for _ in picked]
    scale = max(1.0, MIN_SET_SECONDS / sum(lengths))
    lengths = [length * scale for length in lengths]
    scheduled: list[ScheduledPlay] = []
    at = 0.0
    for track, length in zip(picked, lengths, strict=True):
        offset = rng.choice((0.0, 0.0, rng.uniform(5.0, 30.0)))
        length = min(length, track.duration - offset - CROSSFADE_SECONDS)
        scheduled.append(
            ScheduledPlay(track, round(at, 3), round(at + length, 3), round(offset, 3))
        )
        at += length
    channel_id, channel_name = _CHANNELS[seed % len(_CHANNELS)]
    chapters = tuple(
        FakeChapter(play.start, play.end, f"{play.track.artist} - {play.track.title}")
        for play in scheduled
    )
    return FakeSet(
        video_id=video_id,
        title=f"{channel_name} #{seed % 900 + 100}: {rng.choice(_GENRES)} mix",
        description="Recorded live. Tracklist in the chapters.",
        channel_id=channel_id,
        channel_name=channel_name,
        channel_followers=1000 + seed % 250_000,
        upload_date=f"{2020 + seed % 6}{1 + seed % 12:02d}{1 + seed % 28:02d}",
        view_count=seed % 1_000_000,
        like_count=seed % 20_000,
        duration=round(at, 3),
        plays=tuple(scheduled),
        chapters=chapters,
    )


def render(fake: FakeSet, path: Path, *, rate: int = RATE) -> Path:
    """Write the audio of ``fake`` to ``path`` as a mono 16-bit WAV file; return ``path``."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        for block in _blocks(fake, rate):
            out.writeframes((np.clip(block, -1.0, 1.0) * 32767).astype("<i2").tobytes())
    return path


def _blocks(fake: FakeSet, rate: int, block_seconds: float = 10.0) -> Iterator[np.ndarray]:
    total = int(fake.duration * rate)
    size = int(block_seconds * rate)
    noise = np.random.default_rng(7)
    for first in range(0, total, size):
        times = (np.arange(first, min(first + size, total)) / rate).astype(np.float64)
        block = noise.normal(0.0, _NOISE_LEVEL, len(times))
        for play in fake.plays:
            # Each play sounds from half a crossfade before its start to half after its end.
            lead = CROSSFADE_SECONDS / 2
            begin, finish = play.start - lead, play.end + lead
            mask = (times >= begin) & (times < finish)
            if not mask.any():
                continue
            local = times[mask]
            gain = np.clip(
                np.minimum(
                    (local - begin) / CROSSFADE_SECONDS, (finish - local) / CROSSFADE_SECONDS
                ),
                0.0,
                1.0,
            )
            if play is fake.plays[0]:
                gain = np.where(local < play.start, 1.0, gain)
            if play is fake.plays[-1]:
                gain = np.where(local >= play.end, 1.0, gain)
            into = play.offset + (local - play.start)  # seconds into the track
            block[mask] += gain * _track_signal(play.track, into)
        yield block


def _track_signal(track: FakeTrack, into: np.ndarray) -> np.ndarray:
    identity = _TONE_LEVEL * np.sin(2 * math.pi * track.tone_hz * into)
    # The phase of a tone whose frequency rises linearly: the integral of the frequency.
    phase = 2 * math.pi * (_POSITION_BASE_HZ * into + _POSITION_HZ_PER_SECOND * into**2 / 2)
    return identity + _POSITION_LEVEL * np.sin(phase)


@dataclass(frozen=True)
class Heard:
    """What the fake Shazam heard at the start of a window."""

    track: FakeTrack
    offset: float  # seconds into the track at the window's first sample


def identify(samples: np.ndarray, rate: int) -> Heard | None:
    """Return the catalogue track playing at the start of ``samples``, or None.

    ``samples`` are mono, float (-1..1) or 16-bit integers, at any rate of 8 kHz or more.
    Unreleased tracks, silence and noise are not identified.
    """
    listen = np.asarray(samples[: int(_LISTEN_SECONDS * rate)], dtype=np.float64)
    if np.issubdtype(np.asarray(samples).dtype, np.integer):
        listen = listen / 32768.0
    if len(listen) < rate // 2:
        return None
    spectrum = np.abs(np.fft.rfft(listen * np.hanning(len(listen)), n=4 * len(listen)))
    freqs = np.fft.rfftfreq(4 * len(listen), 1.0 / rate)
    low = _TONE_BASE_HZ - _TONE_STEP_HZ / 2
    high = _tone_hz(CATALOGUE_SIZE + UNRELEASED_SIZE - 1) + _TONE_STEP_HZ / 2
    band = (freqs >= low) & (freqs < high)
    strongest = int(np.argmax(np.where(band, spectrum, 0.0)))
    if spectrum[strongest] < _PEAK_RATIO * float(np.median(spectrum[band])):
        return None
    number = round((freqs[strongest] - _TONE_BASE_HZ) / _TONE_STEP_HZ)
    track = _BY_NUMBER.get(number)
    if track is None or not track.released:
        return None
    top = _POSITION_BASE_HZ + _POSITION_HZ_PER_SECOND * MAX_TRACK_SECONDS
    rising = (freqs >= _POSITION_BASE_HZ - 2) & (freqs < min(top, rate / 2))
    if not rising.any():
        return Heard(track, 0.0)
    peak = float(freqs[int(np.argmax(np.where(rising, spectrum, 0.0)))])
    middle = (peak - _POSITION_BASE_HZ) / _POSITION_HZ_PER_SECOND
    return Heard(track, max(0.0, middle - len(listen) / rate / 2))
