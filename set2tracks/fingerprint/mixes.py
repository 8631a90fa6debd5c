"""Build test DJ mixes with known ground truth from audio files, through ffmpeg.

A plan lists excerpts of source tracks, each played faster or slower with key lock (tempo
changed, pitch kept) or vinyl-style (pitch follows); the builder renders them, crossfades
consecutive excerpts, optionally equalizes them and adds pink noise, encodes the result and
returns where each track is audible. Tests run it on generated tones, the benchmark on music.
"""

from __future__ import annotations

import json
import logging
import math
import random
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from set2tracks.fingerprint.audio import AudioError, ffmpeg_path, file_url, input_args, probe

logger = logging.getLogger(__name__)

QUIET = ["-nostdin", "-hide_banner", "-loglevel", "error"]

# One atempo instance is only guaranteed to accept factors in this range: chain beyond it.
ATEMPO_MIN = 0.5
ATEMPO_MAX = 2.0
# acrossfade refuses longer fades; DJs rarely blend for more than 16 s anyway.
MAX_CROSSFADE = 60.0
# Rendered WAVs agree with their sample counts; a 0.1 s disagreement means a wrong truth.
DURATION_TOLERANCE = 0.1
# Excerpts may end this close past a source's probed end (container durations are estimates).
SOURCE_END_SLACK = 0.05


@dataclass(frozen=True)
class Segment:
    """An excerpt of a source track as played in the mix.

    ``duration`` counts seconds of source material; the excerpt lasts ``duration / speed``
    seconds in the mix.
    """

    source: Path
    source_start: float
    duration: float
    speed: float = 1.0
    key_lock: bool = True
    gain_db: float = 0.0


@dataclass(frozen=True)
class MixPlan:
    """The excerpts of a mix in order, and what happens to the whole mix."""

    segments: list[Segment]
    crossfade: float = 8.0
    eq: bool = False
    noise_level: float | None = None
    mp3_bitrate: str | None = "128k"
    sample_rate: int = 44100
    # Seeds the per-excerpt EQ settings and the noise so a plan always renders the same mix.
    seed: int = 0


@dataclass(frozen=True)
class TruthEntry:
    """Where one excerpt is audible in the mix, from the start of its fade-in to the end of
    its fade-out (the end of the next excerpt's crossfade, or the mix's last sample)."""

    source: str
    start: float
    end: float
    speed: float
    pitch: float
    source_start: float


@dataclass(frozen=True)
class _Eq:
    bass_db: float
    mid_db: float
    treble_db: float


@dataclass
class _Layout:
    """Sample-exact lengths and offsets of the excerpts in the mix."""

    lengths: list[int] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    crossfade: int = 0
    total: int = 0


def build_mix(plan: MixPlan, output: Path) -> list[TruthEntry]:
    """Render the plan to ``output`` and return where each excerpt is audible."""
    _check_plan(plan)
    for segment in plan.segments:
        _check_source(segment)
    layout = _layout(plan)
    with tempfile.TemporaryDirectory(prefix="s2t-mix-") as tmp:
        workdir = Path(tmp)
        parts = []
        for index, segment in enumerate(plan.segments):
            part = workdir / f"segment-{index:03d}.wav"
            eq = _eq_for(plan, index) if plan.eq else None
            _render_segment(segment, part, plan.sample_rate, layout.lengths[index], eq)
            parts.append(part)
        joined = workdir / "mix.wav"
        _join(parts, joined, plan, layout)
        # Compared before encoding: MP3 adds encoder delay and padding to the probed length.
        measured = probe_duration(joined)
        expected = layout.total / plan.sample_rate
        if abs(measured - expected) > DURATION_TOLERANCE:
            raise RuntimeError(
                f"rendered mix lasts {measured:.3f} s but the plan adds up to {expected:.3f} s"
            )
        _encode(joined, output, plan)
    logger.info("Built mix %s: %d excerpts, %.1f s", output, len(plan.segments), expected)
    return _truth(plan, layout)


def random_plan(
    sources: Sequence[Path],
    durations: dict[Path, float],
    *,
    rng: random.Random,
    count: int,
    min_seconds: float,
    max_seconds: float,
    max_speed_change: float,
    vinyl_share: float,
    crossfade: float,
    eq: bool = False,
    noise_level: float | None = None,
    mp3_bitrate: str | None = "128k",
    sample_rate: int = 44100,
) -> MixPlan:
    """Draw a mix of ``count`` excerpts of ``min_seconds``..``max_seconds`` source seconds."""
    if count < 1:
        raise ValueError("a mix needs at least one excerpt")
    if not 0 < min_seconds <= max_seconds:
        raise ValueError("excerpt lengths need 0 < min_seconds <= max_seconds")
    if not 0 <= max_speed_change < 1:
        raise ValueError("max_speed_change must lie in [0, 1)")
    if not 0 <= vinyl_share <= 1:
        raise ValueError("vinyl_share must lie in [0, 1]")
    # The fastest, shortest excerpt must still hold a fade-in and a fade-out that do not meet.
    if min_seconds / (1 + max_speed_change) < 2 * crossfade:
        raise ValueError(
            f"excerpts of {min_seconds} s at up to {1 + max_speed_change:.2f}x are too short "
            f"for {crossfade} s crossfades on both ends"
        )
    usable = [source for source in sources if durations.get(source, 0.0) >= min_seconds]
    if not usable:
        raise ValueError(f"no source lasts at least {min_seconds} s")
    segments: list[Segment] = []
    previous: Path | None = None
    for _ in range(count):
        # A track may come back later in the mix, but never right after itself: two
        # consecutive excerpts of one track would read as one in the truth.
        candidates = [source for source in usable if source != previous] or usable
        source = rng.choice(candidates)
        length = min(rng.uniform(min_seconds, max_seconds), durations[source])
        start = rng.uniform(0.0, durations[source] - length)
        speed = 1.0 + rng.uniform(-max_speed_change, max_speed_change)
        vinyl = rng.random() < vinyl_share
        segments.append(
            Segment(
                source=source,
                source_start=round(start, 3),
                duration=round(length, 3),
                speed=round(speed, 4),
                key_lock=not vinyl,
            )
        )
        previous = source
    return MixPlan(
        segments=segments,
        crossfade=crossfade,
        eq=eq,
        noise_level=noise_level,
        mp3_bitrate=mp3_bitrate,
        sample_rate=sample_rate,
        seed=rng.randrange(2**31),
    )


def write_truth(entries: Sequence[TruthEntry], path: Path) -> None:
    """Write the ground truth of a mix as JSON."""
    payload = {"tracks": [asdict(entry) for entry in entries]}
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def read_truth(path: Path) -> list[TruthEntry]:
    """Read a ground truth written by ``write_truth``."""
    payload = json.loads(path.read_text(encoding="utf-8"))
    return [
        TruthEntry(
            source=str(item["source"]),
            start=float(item["start"]),
            end=float(item["end"]),
            speed=float(item["speed"]),
            pitch=float(item["pitch"]),
            source_start=float(item["source_start"]),
        )
        for item in payload["tracks"]
    ]


def probe_duration(path: Path) -> float:
    """Return the duration of an audio file in seconds; raise ValueError if it has no audio."""
    try:
        return probe(path).duration
    except AudioError as error:
        raise ValueError(f"cannot use audio file {path}: {error}") from None


def tone_track(path: Path, seconds: float, seed: int) -> None:
    """Write a synthetic track whose melody, tempo and beat all depend on ``seed``."""
    rng = random.Random(seed)  # noqa: S311 (reproducible test audio, not secrets)
    bpm = rng.uniform(100.0, 140.0)
    step = 60.0 / bpm / 2
    steps = 16
    root = rng.randint(52, 64)
    scale = rng.choice([(0, 2, 4, 7, 9, 12, 14, 16), (0, 3, 5, 7, 10, 12, 15, 17)])
    # Rests (frequency 0) make the rhythm differ between seeds as much as the pitches do.
    freqs = [
        0.0 if rng.random() < 0.2 else 440.0 * 2 ** ((root + rng.choice(scale) - 69) / 12)
        for _ in range(steps)
    ]
    # aevalsrc evaluates the expression per sample and only the taken branch of if(): pick
    # the step's frequency through a chain of ifs rather than summing gated notes.
    melody = "0"
    for index in reversed(range(steps)):
        melody = f"if(eq(ld(1),{index}),{freqs[index]:.3f},{melody})"
    kick_freq = rng.uniform(45.0, 70.0)
    hat_decay = rng.uniform(40.0, 90.0)
    beat = 2 * step
    expression = ";".join(
        [
            f"st(0,mod(t,{steps * step:.6f}))",
            f"st(1,floor(ld(0)/{step:.6f}))",
            f"st(2,ld(0)-ld(1)*{step:.6f})",
            f"st(3,{melody})",
            # A decaying note plus its fifth (two spectral peaks per onset), a kick on the
            # beat and a noisy hi-hat on the off-beat.
            f"0.25*exp(-4*ld(2))*(sin(2*PI*ld(3)*t)+0.5*sin(3*PI*ld(3)*t))"
            f"+0.5*exp(-25*mod(t,{beat:.6f}))*sin(2*PI*{kick_freq:.3f}*mod(t,{beat:.6f}))"
            f"+0.08*exp(-{hat_decay:.1f}*mod(t+{step:.6f},{beat:.6f}))*(2*random(4)-1)",
        ]
    )
    _ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            f"aevalsrc=exprs='{expression}':s=44100:d={seconds:.3f}",
            "-ac",
            "2",
            file_url(path),
        ]
    )


def _check_plan(plan: MixPlan) -> None:
    if not plan.segments:
        raise ValueError("a mix plan needs at least one segment")
    if not 0 <= plan.crossfade <= MAX_CROSSFADE:
        raise ValueError(f"crossfade must lie in [0, {MAX_CROSSFADE}] s")
    if plan.noise_level is not None and not 0 <= plan.noise_level <= 1:
        raise ValueError("noise_level is an amplitude in [0, 1]")
    last = len(plan.segments) - 1
    for index, segment in enumerate(plan.segments):
        if segment.duration <= 0 or segment.speed <= 0 or segment.source_start < 0:
            raise ValueError(f"segment {index} of {segment.source} needs positive values")
        fades = (index > 0) + (index < last)
        # Overlapping fades would put three tracks on air at once and blur the truth.
        if segment.duration / segment.speed < fades * plan.crossfade:
            raise ValueError(
                f"segment {index} of {segment.source} lasts "
                f"{segment.duration / segment.speed:.2f} s in the mix, too short for "
                f"{fades} crossfade(s) of {plan.crossfade} s"
            )


def _check_source(segment: Segment) -> None:
    length = probe_duration(segment.source)
    if segment.source_start + segment.duration > length + SOURCE_END_SLACK:
        raise ValueError(
            f"excerpt {segment.source_start:.2f}+{segment.duration:.2f} s runs past the end "
            f"of {segment.source} ({length:.2f} s)"
        )


def _layout(plan: MixPlan) -> _Layout:
    rate = plan.sample_rate
    crossfade = round(plan.crossfade * rate) if len(plan.segments) > 1 else 0
    layout = _Layout(crossfade=crossfade)
    position = 0
    for segment in plan.segments:
        # Each excerpt is padded or trimmed to this many samples, so the truth is exact.
        length = round(segment.duration / segment.speed * rate)
        layout.starts.append(position)
        layout.lengths.append(length)
        position += length - crossfade
    layout.total = position + crossfade
    return layout


def _truth(plan: MixPlan, layout: _Layout) -> list[TruthEntry]:
    rate = plan.sample_rate
    return [
        TruthEntry(
            source=str(segment.source),
            start=round(start / rate, 4),
            end=round((start + length) / rate, 4),
            speed=segment.speed,
            pitch=1.0 if segment.key_lock else segment.speed,
            source_start=segment.source_start,
        )
        for segment, start, length in zip(plan.segments, layout.starts, layout.lengths, strict=True)
    ]


def _tempo_filters(speed: float) -> list[str]:
    filters = []
    remaining = speed
    while remaining > ATEMPO_MAX:
        filters.append(f"atempo={ATEMPO_MAX}")
        remaining /= ATEMPO_MAX
    while remaining < ATEMPO_MIN:
        filters.append(f"atempo={ATEMPO_MIN}")
        remaining /= ATEMPO_MIN
    filters.append(f"atempo={remaining:.6f}")
    return filters


def _speed_filters(segment: Segment, rate: int) -> list[str]:
    if math.isclose(segment.speed, 1.0):
        return []
    if segment.key_lock:
        return _tempo_filters(segment.speed)
    # Vinyl: play the samples at a faster clock, then resample back; pitch follows.
    return [f"asetrate={round(rate * segment.speed)}", f"aresample={rate}"]


def _eq_for(plan: MixPlan, index: int) -> _Eq:
    rng = random.Random(f"{plan.seed}:{index}")  # noqa: S311 (reproducible mixes)
    return _Eq(
        bass_db=rng.uniform(-6.0, 4.0),
        mid_db=rng.uniform(-4.0, 3.0),
        treble_db=rng.uniform(-8.0, 3.0),
    )


def _render_segment(segment: Segment, part: Path, rate: int, samples: int, eq: _Eq | None) -> None:
    filters = [f"aresample={rate}", *_speed_filters(segment, rate)]
    if eq is not None:
        filters += [
            f"bass=g={eq.bass_db:.2f}:f=100",
            f"equalizer=f=1000:t=q:w=1:g={eq.mid_db:.2f}",
            f"treble=g={eq.treble_db:.2f}:f=6000",
        ]
    if segment.gain_db:
        filters.append(f"volume={segment.gain_db:.2f}dB")
    # Tempo filters round lengths a little differently; fixing the count keeps truth exact.
    filters += [f"apad=whole_len={samples}", f"atrim=end_sample={samples}"]
    _ffmpeg(
        [
            "-ss",
            f"{segment.source_start:.6f}",
            "-t",
            f"{segment.duration:.6f}",
            *input_args(segment.source),
            "-af",
            ",".join(filters),
            "-ac",
            "2",
            "-ar",
            str(rate),
            "-c:a",
            "pcm_s16le",
            file_url(part),
        ]
    )


def _join(parts: Sequence[Path], joined: Path, plan: MixPlan, layout: _Layout) -> None:
    inputs: list[str] = []
    for part in parts:
        inputs += input_args(part)
    graph: list[str] = []
    current = "[0:a]"
    for index in range(1, len(parts)):
        label = f"[x{index}]"
        if layout.crossfade:
            graph.append(f"{current}[{index}:a]acrossfade=ns={layout.crossfade}{label}")
        else:
            graph.append(f"{current}[{index}:a]concat=n=2:v=0:a=1{label}")
        current = label
    if plan.noise_level:
        seconds = layout.total / plan.sample_rate + 1
        graph.append(
            f"anoisesrc=color=pink:amplitude={plan.noise_level}:r={plan.sample_rate}"
            f":seed={plan.seed}:d={seconds:.3f},aformat=channel_layouts=stereo[noise]"
        )
        # normalize=0 adds the noise at its own level instead of halving both inputs.
        graph.append(f"{current}[noise]amix=inputs=2:duration=first:normalize=0[mixed]")
        current = "[mixed]"
    graph.append(f"{current}anull[out]")
    _ffmpeg(
        [
            *inputs,
            "-filter_complex",
            ";".join(graph),
            "-map",
            "[out]",
            "-c:a",
            "pcm_s16le",
            file_url(joined),
        ]
    )


def _encode(joined: Path, output: Path, plan: MixPlan) -> None:
    codec = ["-c:a", "libmp3lame", "-b:a", plan.mp3_bitrate] if plan.mp3_bitrate else []
    _ffmpeg([*input_args(joined), *codec, file_url(output)])


def _ffmpeg(args: list[str]) -> None:
    # An argument list, never a shell: file names reach ffmpeg verbatim, whatever they hold.
    subprocess.run([ffmpeg_path(), *QUIET, "-y", *args], check=True)  # noqa: S603
