#!/usr/bin/env python3
"""Benchmark own-library identification on DJ mixes with known ground truth.

Builds test mixes from real music: the 18 tracks of Debian's ``nexuiz-music`` package
(electronic, GPL; ``/usr/share/games/nexuiz/data/music.pk3`` is a zip of .ogg files). Each
mix strings random excerpts (45-120 source seconds) together with key-lock tempo changes
and vinyl speed changes, crossfades of 8 s up to ``--crossfade``, EQ, pink noise and a
128 kbps MP3 encode (``set2tracks.fingerprint.mixes`` does all of that and returns the
truth). The first mix of every condition plays one track twice. The script then indexes
the tracks, identifies every mix and prints:

- recall: true excerpts found by an entry naming the right file with a start within 15 s;
- precision: reported entries that are right;
- median start error (s), median absolute speed error (%), share of right pitch factors;
- indexing and identification speed, in seconds of audio per second (x real time);
- peak memory: ``ru_maxrss`` from ``os.wait4`` on each CLI process. On Linux that is the
  largest single process of the call's tree (the command or any pool worker or ffmpeg it
  waited for), not the sum of the tree.

The engine is driven only through its CLI (``flask --app wsgi db upgrade``, ``library add``,
``identify MIX --format json``), in subprocesses with their own SQLite database and
fingerprint folder under the work directory. They run in ``WORKDIR/app``, symbolic links to
the repository's ``set2tracks``, ``wsgi.py`` and ``migrations``: Flask puts the instance
folder beside the package it imported, and every app start writes there (the embedded
profile's session cache), so run from the repository they would write into the developer's
``instance/``.
The script measures; it does not assert the targets, it only says whether each is met.

Run from the repository root::

    .venv/bin/python scripts/bench_identify.py                 # 2 conditions x 3 mixes
    .venv/bin/python scripts/bench_identify.py --quick         # smoke run
    .venv/bin/python scripts/bench_identify.py --hour --json bench.json
    .venv/bin/python scripts/bench_identify.py --build-only --quick --keep   # mixes only

Needs ``apt-get install nexuiz-music`` (ffmpeg: the system's, else the bundled one).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Run as a file, the script sees scripts/ on sys.path, not the repository root.
sys.path.insert(0, str(REPO))

from set2tracks.fingerprint.audio import AudioError, ffmpeg_path  # noqa: E402
from set2tracks.fingerprint.mixes import (  # noqa: E402
    MixPlan,
    Segment,
    TruthEntry,
    build_mix,
    probe_duration,
    random_plan,
    write_truth,
)

PK3 = Path("/usr/share/games/nexuiz/data/music.pk3")
MIN_EXCERPT = 45.0
MAX_EXCERPT = 120.0
MIN_CROSSFADE = 8.0
VINYL_SHARE = 0.3
# The builder neither limits nor normalises: at full level, EQ boosts and crossfades clip
# about 1 % of the samples of these loudly mastered tracks. DJs leave headroom too.
HEADROOM_DB = -6.0
# Pink noise of this amplitude is about -46 dBFS RMS: 20-30 dB below the quieted tracks.
NOISE_LEVEL = 0.025
START_TOLERANCE = 15.0
PITCH_TOLERANCE = 0.01
HOUR_SECONDS = 3600.0
HOUR_SPEED_CHANGE = 0.06
# The hour mix skips this much at both ends of a source, where a DJ would not play.
HOUR_EDGE = 2.0
QUICK_TRACKS = 4
INDEX_TARGET = 100.0
IDENTIFY_TARGET = 200.0
AUDIO_SUFFIXES = {".mp3", ".ogg", ".oga", ".opus", ".flac", ".wav", ".m4a", ".aac", ".aif", ".aiff"}
# What `library add` and `identify` print on stderr when they finish.
SPEED_LINE = re.compile(r"(\d+(?:\.\d+)?) s of audio in (\d+(?:\.\d+)?) s")
STDERR_TAIL = 25


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


@dataclass(frozen=True)
class Targets:
    recall: float
    precision: float
    start_error: float | None = None
    speed_error: float | None = None


# Upper end of a condition's speed range (percent) -> what the issue asks for there.
TARGETS = {6.0: Targets(0.95, 0.98, 2.0, 0.5), 10.0: Targets(0.90, 0.97)}


@dataclass(frozen=True)
class Reported:
    """One entry of `identify --format json`."""

    path: str
    start: float
    end: float | None
    speed: float | None
    pitch: float | None
    confidence: float | None
    title: str | None


@dataclass(frozen=True)
class Match:
    truth_index: int
    reported_index: int
    start_error: float
    speed_error: float | None
    pitch_right: bool


@dataclass(frozen=True)
class Score:
    truth_count: int
    reported_count: int
    matches: list[Match]
    missed: list[int]
    false: list[int]


@dataclass
class CliRun:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    wall: float
    max_rss_kib: int
    audio_seconds: float | None
    elapsed: float | None


@dataclass
class BenchMix:
    name: str
    condition: str
    path: Path
    plan: MixPlan
    truth: list[TruthEntry] = field(default_factory=list)


@dataclass
class MixResult:
    mix: BenchMix
    duration: float | None
    reported: list[Reported]
    score: Score
    run: CliRun


def same_file(reported_path: str, source: str) -> bool:
    """Tell whether a reported library path names the truth's source file."""
    reported = Path(reported_path)
    if reported.resolve() == Path(source).resolve():
        return True
    # A path the engine rewrote (relative, or no longer there) can only be told by its name.
    if not reported.is_absolute() or not reported.exists():
        return reported.name == Path(source).name
    return False


def score(truth: Sequence[TruthEntry], reported: Sequence[Reported]) -> Score:
    """Match reported entries to the truth, one to one, the smallest start errors first."""
    candidates = []
    for truth_index, entry in enumerate(truth):
        for reported_index, found in enumerate(reported):
            error = abs(found.start - entry.start)
            if error <= START_TOLERANCE and same_file(found.path, entry.source):
                candidates.append((error, truth_index, reported_index))
    candidates.sort()
    matches: list[Match] = []
    used_truth: set[int] = set()
    used_reported: set[int] = set()
    for error, truth_index, reported_index in candidates:
        if truth_index in used_truth or reported_index in used_reported:
            continue
        used_truth.add(truth_index)
        used_reported.add(reported_index)
        entry = truth[truth_index]
        found = reported[reported_index]
        speed_error = (
            abs(found.speed - entry.speed) / entry.speed * 100 if found.speed is not None else None
        )
        pitch_right = (
            found.pitch is not None
            and abs(found.pitch - entry.pitch) / entry.pitch < PITCH_TOLERANCE
        )
        matches.append(Match(truth_index, reported_index, error, speed_error, pitch_right))
    matches.sort(key=lambda match: match.truth_index)
    return Score(
        truth_count=len(truth),
        reported_count=len(reported),
        matches=matches,
        missed=[index for index in range(len(truth)) if index not in used_truth],
        false=[index for index in range(len(reported)) if index not in used_reported],
    )


def parse_report(stdout: str) -> tuple[float | None, list[Reported]]:
    """Read the mix duration and the entries from `identify --format json` output."""
    payload = json.loads(stdout)
    entries = [
        Reported(
            path=str(item["path"]),
            start=float(item["start"]),
            end=_number(item.get("end")),
            speed=_number(item.get("speed")),
            pitch=_number(item.get("pitch")),
            confidence=_number(item.get("confidence")),
            title=item.get("title"),
        )
        for item in payload["tracks"]
    ]
    return _number(payload.get("duration")), entries


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def summarize(results: Sequence[MixResult], distractors: Path | None = None) -> dict[str, Any]:
    """Add up the scores and timings of some identified mixes."""
    matches = [match for result in results for match in result.score.matches]
    false_paths = [Path(r.reported[i].path).resolve() for r in results for i in r.score.false]
    truth = sum(result.score.truth_count for result in results)
    reported = sum(result.score.reported_count for result in results)
    speed_errors = [m.speed_error for m in matches if m.speed_error is not None]
    audio = [r.run.audio_seconds for r in results]
    elapsed = [r.run.elapsed for r in results]
    engine_known = all(a is not None for a in audio) and all(e is not None for e in elapsed)
    mix_seconds = sum(r.mix.truth[-1].end for r in results)
    wall = sum(r.run.wall for r in results)
    engine_elapsed = sum(e for e in elapsed if e is not None)
    return {
        "mixes": len(results),
        "true_tracks": truth,
        "reported": reported,
        "matched": len(matches),
        "recall": len(matches) / truth if truth else None,
        "precision": len(matches) / reported if reported else None,
        "false_from_distractors": (
            sum(path.is_relative_to(distractors.resolve()) for path in false_paths)
            if distractors is not None
            else None
        ),
        "median_start_error_s": _median([m.start_error for m in matches]),
        "median_speed_error_pct": _median(speed_errors),
        "pitch_right_share": (
            sum(m.pitch_right for m in matches) / len(matches) if matches else None
        ),
        "mix_seconds": mix_seconds,
        "identify_x_realtime": (
            sum(a for a in audio if a is not None) / engine_elapsed
            if engine_known and engine_elapsed > 0
            else None
        ),
        "identify_x_realtime_wall": mix_seconds / wall if wall > 0 else None,
        "peak_rss_mib": max((r.run.max_rss_kib for r in results), default=0) / 1024,
    }


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


# Building the mixes ------------------------------------------------------------------------


def extract_music(pk3: Path, music: Path) -> list[Path]:
    """Unpack the .ogg files of the pk3 into ``music``, keeping files already there."""
    music.mkdir(parents=True, exist_ok=True)
    sources = []
    with zipfile.ZipFile(pk3) as archive:
        for member in archive.infolist():
            if member.is_dir() or not member.filename.lower().endswith(".ogg"):
                continue
            # Only the base name: a member path can never write outside the music folder.
            target = music / PurePosixPath(member.filename).name
            if not target.exists() or target.stat().st_size != member.file_size:
                target.write_bytes(archive.read(member))
            sources.append(target)
    if not sources:
        raise BenchError(f"{pk3} holds no .ogg files")
    return sorted(sources)


def plan_mixes(
    sources: Sequence[Path],
    durations: dict[Path, float],
    args: argparse.Namespace,
    mixes_dir: Path,
) -> list[BenchMix]:
    """Draw every mix of every condition, and the hour mix with ``--hour``."""
    mixes = []
    for percent in args.conditions:
        for number in range(1, args.mixes + 1):
            # One generator per mix: adding conditions or mixes leaves the others unchanged.
            rng = random.Random(f"{args.seed}:{percent:g}:{number}")  # noqa: S311
            crossfade = _crossfade(rng, args.crossfade)
            try:
                plan = random_plan(
                    sources,
                    durations,
                    rng=rng,
                    count=args.tracks_per_mix,
                    min_seconds=MIN_EXCERPT,
                    max_seconds=MAX_EXCERPT,
                    max_speed_change=percent / 100,
                    vinyl_share=VINYL_SHARE,
                    crossfade=crossfade,
                    eq=True,
                    noise_level=NOISE_LEVEL,
                )
            except ValueError as error:
                raise BenchError(f"cannot plan a mix at ±{percent:g} %: {error}") from error
            if number == 1:
                plan = with_repeat(plan, durations, rng)
            plan = replace(plan, segments=[replace(s, gain_db=HEADROOM_DB) for s in plan.segments])
            name = f"speed{percent:02g}-{number:02d}"
            mixes.append(BenchMix(name, f"±{percent:g} %", mixes_dir / f"{name}.mp3", plan))
    if args.hour:
        rng = random.Random(f"{args.seed}:hour")  # noqa: S311
        plan = hour_plan(sources, durations, rng=rng, crossfade=_crossfade(rng, args.crossfade))
        mixes.append(BenchMix("hour", "1-hour mix", mixes_dir / "hour.mp3", plan))
    return mixes


def _crossfade(rng: random.Random, longest: float) -> float:
    return round(rng.uniform(min(MIN_CROSSFADE, longest), longest), 1)


def with_repeat(plan: MixPlan, durations: dict[Path, float], rng: random.Random) -> MixPlan:
    """Make the plan's last excerpt a second excerpt of its first track, unless one repeats."""
    sources = [segment.source for segment in plan.segments]
    # A repeat needs a track between the two excerpts, or they would read as one.
    if len(set(sources)) < len(sources) or len(sources) < 3:
        return plan
    first, last = plan.segments[0], plan.segments[-1]
    length = min(last.duration, durations[first.source])
    again = replace(
        last,
        source=first.source,
        source_start=round(rng.uniform(0.0, durations[first.source] - length), 3),
        duration=round(length, 3),
    )
    return replace(plan, segments=[*plan.segments[:-1], again])


def hour_plan(
    sources: Sequence[Path],
    durations: dict[Path, float],
    *,
    rng: random.Random,
    crossfade: float,
) -> MixPlan:
    """Plan a mix of about an hour playing every source, each cut to one common length."""
    order = list(sources)
    rng.shuffle(order)
    speeds = [round(1 + rng.uniform(-HOUR_SPEED_CHANGE, HOUR_SPEED_CHANGE), 4) for _ in order]
    playable = {source: max(durations[source] - 2 * HOUR_EDGE, 0.0) for source in order}

    def mix_seconds(limit: float) -> float:
        played = sum(
            min(playable[s], limit) / speed for s, speed in zip(order, speeds, strict=True)
        )
        return played - (len(order) - 1) * crossfade

    longest = max(playable.values())
    if mix_seconds(longest) < HOUR_SECONDS:
        raise BenchError(
            f"the music lasts {mix_seconds(longest) / 60:.0f} min at most, "
            "too little for the hour mix"
        )
    # Bisect the longest excerpt: short tracks play whole, long ones are cut to the limit.
    low, high = 0.0, longest
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if mix_seconds(middle) < HOUR_SECONDS else (low, middle)
    segments = []
    for source, speed in zip(order, speeds, strict=True):
        length = min(playable[source], high)
        start = HOUR_EDGE + rng.uniform(0.0, playable[source] - length)
        segments.append(
            Segment(
                source=source,
                source_start=round(start, 3),
                duration=round(length, 3),
                speed=speed,
                key_lock=rng.random() >= VINYL_SHARE,
                gain_db=HEADROOM_DB,
            )
        )
    return MixPlan(
        segments=segments,
        crossfade=crossfade,
        eq=True,
        noise_level=NOISE_LEVEL,
        seed=rng.randrange(2**31),
    )


def build_all(mixes: Sequence[BenchMix]) -> None:
    """Render the mixes (ffmpeg, one per core) and write each truth next to its mix."""

    def build(mix: BenchMix) -> None:
        try:
            mix.truth = build_mix(mix.plan, mix.path)
        except (ValueError, RuntimeError, subprocess.CalledProcessError) as error:
            raise BenchError(f"building {mix.name} failed: {error}") from error
        write_truth(mix.truth, mix.path.with_suffix(".truth.json"))
        say(f"  built {mix.name}: {len(mix.truth)} excerpts, {mix.truth[-1].end / 60:.1f} min")

    # Longest first, so the hour mix does not start last and hold up the end.
    longest_first = sorted(
        mixes, key=lambda mix: -sum(s.duration / s.speed for s in mix.plan.segments)
    )
    with ThreadPoolExecutor(max_workers=_cores()) as pool:
        list(pool.map(build, longest_first))


# Driving the engine ------------------------------------------------------------------------


class Cli:
    """Runs ``flask --app wsgi`` commands against the benchmark's own database and index."""

    def __init__(self, workdir: Path) -> None:
        self.logs = workdir / "logs"
        self.logs.mkdir(exist_ok=True)
        self.root = workdir / "app"
        self.root.mkdir(exist_ok=True)
        for name in ("set2tracks", "wsgi.py", "migrations"):
            link = self.root / name
            link.unlink(missing_ok=True)
            link.symlink_to(REPO / name)
        self.env = {key: value for key, value in os.environ.items() if key != "SET2TRACKS_ENV"}
        self.env.update(
            {
                "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
                "FINGERPRINT_DIR": str(workdir / "index"),
                "UPLOAD_DIR": str(workdir / "uploads"),
                "SECRET_KEY": secrets.token_hex(32),
                # No developer's .env either: they run in WORKDIR/app, which has none.
                "FLASK_SKIP_DOTENV": "1",
            }
        )
        self.count = 0

    def run(self, args: list[str], label: str, *, check: bool = True) -> CliRun:
        """Run one command to its end and collect its output, timings and peak memory."""
        self.count += 1
        stem = self.logs / f"{self.count:03d}-{label}"
        command = [sys.executable, "-m", "flask", "--app", "wsgi", *args]
        with open(f"{stem}.out", "w+b") as out, open(f"{stem}.err", "w+b") as err:
            began = time.perf_counter()
            process = subprocess.Popen(  # noqa: S603 (an argument list, no shell)
                command,
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
            # wait4, not wait: its rusage covers the process and every child it reaped.
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - began
            process.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode("utf-8", "replace")
            stderr = err.read().decode("utf-8", "replace")
        found = SPEED_LINE.findall(stderr)
        run = CliRun(
            args=args,
            returncode=process.returncode,
            stdout=stdout,
            stderr=stderr,
            wall=wall,
            max_rss_kib=usage.ru_maxrss,
            audio_seconds=float(found[-1][0]) if found else None,
            elapsed=float(found[-1][1]) if found else None,
        )
        if check and run.returncode != 0:
            raise BenchError(
                f"`flask --app wsgi {' '.join(args)}` exited with {run.returncode}; "
                f"stderr ends with:\n{_tail(stderr)}"
            )
        return run


def _tail(text: str) -> str:
    lines = text.rstrip().splitlines()[-STDERR_TAIL:]
    return "\n".join(f"    {line}" for line in lines) or "    (nothing)"


def check_cli(cli: Cli) -> None:
    """Fail early, before building mixes, when the engine's commands are not there."""
    for command in (["library", "add", "--help"], ["identify", "--help"]):
        run = cli.run(command, "help", check=False)
        if run.returncode != 0:
            raise BenchError(
                f"the engine's CLI is not usable: `flask --app wsgi {' '.join(command)}` "
                f"exited with {run.returncode}:\n{_tail(run.stderr or run.stdout)}"
            )


def identify(cli: Cli, mix: BenchMix, min_confidence: float | None) -> MixResult:
    """Identify one mix and score it against its truth."""
    args = ["identify", str(mix.path), "--format", "json"]
    if min_confidence is not None:
        args += ["--min-confidence", f"{min_confidence:g}"]
    run = cli.run(args, mix.name)
    try:
        duration, reported = parse_report(run.stdout)
    except (ValueError, KeyError, TypeError) as error:
        raise BenchError(
            f"identify {mix.name}: unreadable JSON ({error}); stdout starts with:\n"
            f"{run.stdout[:500]}"
        ) from error
    return MixResult(mix, duration, reported, score(mix.truth, reported), run)


# Reporting ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Describe this machine as `nproc`, /proc/meminfo and /proc/cpuinfo do."""
    memory_gib = None
    model = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = int(line.split()[1]) / 1024**2
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": _cores(), "memory_gib": memory_gib, "cpu": model}


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def machine_name(info: dict[str, Any]) -> str:
    memory = f"{info['memory_gib']:.0f} GiB" if info["memory_gib"] else "? GiB"
    return f"{info['cores']} cores, {memory}, {info['cpu'] or 'unknown CPU'}"


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def _verdict(value: float | None, target: float | None, *, at_least: bool, unit: str = "") -> str:
    if target is None:
        return ""
    sign = ">=" if at_least else "<="
    met = value is not None and (value >= target if at_least else value <= target)
    return f"  target {sign} {target:g}{unit}: {'met' if met else 'MISSED'}"


def targets_for(percent: float) -> Targets | None:
    for limit in sorted(TARGETS):
        if percent <= limit:
            return TARGETS[limit]
    return None


def condition_lines(label: str, figures: dict[str, Any], targets: Targets | None) -> list[str]:
    t = targets
    return [
        f"{label}: {figures['mixes']} mix(es), {figures['true_tracks']} true excerpts, "
        f"{figures['reported']} reported, {figures['matched']} right",
        f"  recall              {_fmt(figures['recall'], '.3f')}"
        + _verdict(figures["recall"], t and t.recall, at_least=True),
        f"  precision           {_fmt(figures['precision'], '.3f')}"
        + _verdict(figures["precision"], t and t.precision, at_least=True)
        + (
            f"  ({figures['false_from_distractors']} false entries name a distractor)"
            if figures["false_from_distractors"] is not None
            else ""
        ),
        f"  median start error  {_fmt(figures['median_start_error_s'], '.2f', ' s')}"
        + _verdict(figures["median_start_error_s"], t and t.start_error, at_least=False, unit=" s"),
        f"  median speed error  {_fmt(figures['median_speed_error_pct'], '.3f', ' %')}"
        + _verdict(
            figures["median_speed_error_pct"], t and t.speed_error, at_least=False, unit=" %"
        ),
        f"  pitch right         {_fmt(figures['pitch_right_share'], '.3f')}",
        f"  identify speed      {_fmt(figures['identify_x_realtime'], '.0f', 'x')} real time "
        f"(engine), {_fmt(figures['identify_x_realtime_wall'], '.0f', 'x')} with process "
        "start-up",
        f"  peak RSS            {figures['peak_rss_mib']:.0f} MiB (largest single process)",
    ]


def misses(results: Sequence[MixResult]) -> list[str]:
    """Describe each missed excerpt and each false entry in one line."""
    lines = []
    for result in results:
        truth, reported = result.mix.truth, result.reported
        for index in result.score.missed:
            entry = truth[index]
            name = Path(entry.source).name
            nearest = min(
                (f for f in reported if same_file(f.path, entry.source)),
                key=lambda f: abs(f.start - entry.start),
                default=None,
            )
            found = (
                f"nearest entry of it at {nearest.start:.1f} s "
                f"({nearest.start - entry.start:+.1f} s)"
                if nearest
                else "not reported at all"
            )
            mode = "key-lock" if entry.pitch == 1.0 else "vinyl"
            lines.append(
                f"  {result.mix.name:<12} MISS  {name:<26} truth {entry.start:7.1f}-"
                f"{entry.end:6.1f} s x{entry.speed:.3f} {mode:<8}  {found}"
            )
        for index in result.score.false:
            found = reported[index]
            playing = [
                Path(entry.source).name for entry in truth if entry.start <= found.start < entry.end
            ]
            lines.append(
                f"  {result.mix.name:<12} FALSE {Path(found.path).name:<26} found "
                f"{found.start:7.1f}-{_fmt(found.end, '6.1f')} s x{_fmt(found.speed, '.3f')} "
                f"conf {_fmt(found.confidence, '.2f')}  truth there: {', '.join(playing) or '-'}"
            )
    return lines


def markdown(
    rows: Sequence[tuple[str, dict[str, Any]]],
    index: dict[str, Any],
    hour: dict[str, Any] | None,
    host: str,
) -> list[str]:
    """Return the README tables: accuracy per condition, then speed and memory."""
    lines = [
        "| speed change | mixes | excerpts | recall | precision | median start error "
        "| median speed error | pitch right | identify | machine |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, f in rows:
        lines.append(
            f"| {label} | {f['mixes']} | {f['true_tracks']} | {_fmt(f['recall'], '.3f')} "
            f"| {_fmt(f['precision'], '.3f')} | {_fmt(f['median_start_error_s'], '.2f', ' s')} "
            f"| {_fmt(f['median_speed_error_pct'], '.3f', ' %')} "
            f"| {_fmt(f['pitch_right_share'], '.2f')} "
            f"| {_fmt(f['identify_x_realtime'], '.0f', 'x')} | {host} |"
        )
    lines += [
        "",
        "| measure | result | target | machine |",
        "|---|---|---|---|",
        f"| indexing ({index['files']} files, {index['audio_hours']:.2f} h) "
        f"| {_fmt(index['x_realtime'], '.0f', 'x')} real time, "
        f"peak {index['peak_rss_mib']:.0f} MiB | >= {INDEX_TARGET:g}x | {host} |",
    ]
    if hour is not None:
        lines.append(
            f"| identifying a {hour['mix_seconds'] / 60:.0f}-minute mix "
            f"| {_fmt(hour['identify_x_realtime'], '.0f', 'x')} real time, "
            f"peak {hour['peak_rss_mib']:.0f} MiB | >= {IDENTIFY_TARGET:g}x | {host} |"
        )
    return lines


def print_truth(mixes: Sequence[BenchMix]) -> None:
    for mix in mixes:
        print(
            f"{mix.name} ({mix.condition}): {mix.path}, {mix.truth[-1].end:.1f} s, "
            f"crossfade {mix.plan.crossfade:g} s"
        )
        for entry in mix.truth:
            mode = "key-lock" if entry.pitch == 1.0 else "vinyl"
            print(
                f"  {entry.start:7.1f}-{entry.end:7.1f} s  {Path(entry.source).name:<26} "
                f"from {entry.source_start:6.1f} s  speed {entry.speed:.4f} {mode}"
            )


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# Main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark own-library identification on mixes with known ground truth."
    )
    parser.add_argument("--workdir", type=Path, help="work folder (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--mixes", type=int, default=3, help="mixes per condition (default 3)")
    parser.add_argument(
        "--tracks-per-mix", type=int, default=8, help="excerpts per mix (default 8)"
    )
    parser.add_argument(
        "--crossfade",
        type=float,
        default=16.0,
        help="longest crossfade in seconds; each mix draws one from 8 s up to it (default 16)",
    )
    parser.add_argument(
        "--conditions",
        default="6,10",
        help="largest speed changes in percent, one set of mixes each (default 6,10)",
    )
    parser.add_argument(
        "--hour", action="store_true", help="also identify a ~60-minute mix of every track"
    )
    parser.add_argument(
        "--distractors", type=Path, help="also index every audio file under this folder"
    )
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument(
        "--quick", action="store_true", help=f"1 mix of {QUICK_TRACKS} excerpts per condition"
    )
    parser.add_argument(
        "--build-only", action="store_true", help="build the mixes, print their truth, stop"
    )
    parser.add_argument(
        "--min-confidence", type=float, help="passed to identify (default: the engine's)"
    )
    parser.add_argument("--pk3", type=Path, default=PK3, help=f"music archive (default {PK3})")
    args = parser.parse_args(argv)
    try:
        args.conditions = [float(part) for part in args.conditions.split(",") if part.strip()]
    except ValueError:
        parser.error("--conditions takes percentages separated by commas, e.g. 6,10")
    if not args.conditions or not all(0 <= percent < 100 for percent in args.conditions):
        parser.error("--conditions takes percentages from 0 to 99")
    if args.quick:
        args.mixes, args.tracks_per_mix = 1, QUICK_TRACKS
    if args.mixes < 1 or args.tracks_per_mix < 1:
        parser.error("--mixes and --tracks-per-mix must be at least 1")
    if args.distractors is not None and not args.distractors.is_dir():
        parser.error(f"--distractors: {args.distractors} is not a folder")
    return args


def missing_prerequisite(pk3: Path) -> str | None:
    """What the benchmarks need and this machine lacks, said with how to install it."""
    try:
        ffmpeg_path()  # the system's, or the one imageio-ffmpeg ships
    except AudioError as error:
        return str(error)
    if not pk3.is_file():
        return f"{pk3} not found: apt-get install nexuiz-music"
    return None


def work_folder(given: Path | None, prefix: str) -> tuple[Path, bool]:
    """The folder to work in (a new temporary one unless given) and whether it is temporary."""
    folder = Path(tempfile.mkdtemp(prefix=prefix)) if given is None else given
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder, given is None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if (problem := missing_prerequisite(args.pk3)) is not None:
        return _fail(problem)
    workdir, temporary = work_folder(args.workdir, "s2t-bench-")
    try:
        return run_bench(args, workdir)
    except BenchError as error:
        return _fail(str(error))
    finally:
        if temporary and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"work folder kept: {workdir}")


def _fail(message: str) -> int:
    say(f"bench_identify: error: {message}")
    return 1


def run_bench(args: argparse.Namespace, workdir: Path) -> int:
    say(f"work folder {workdir}")
    sources = extract_music(args.pk3, workdir / "music")
    try:
        durations = {source: probe_duration(source) for source in sources}
    except ValueError as error:
        raise BenchError(str(error)) from error
    say(f"{len(sources)} tracks, {sum(durations.values()) / 60:.1f} min of music")
    cli = None
    if not args.build_only:
        cli = Cli(workdir)
        check_cli(cli)
    mixes_dir = workdir / "mixes"
    mixes_dir.mkdir(exist_ok=True)
    mixes = plan_mixes(sources, durations, args, mixes_dir)
    say(f"building {len(mixes)} mixes")
    build_all(mixes)
    if cli is None:
        print_truth(mixes)
        return 0

    # A re-used work folder starts from an empty index, or nothing would be indexed.
    (workdir / "bench.db").unlink(missing_ok=True)
    shutil.rmtree(workdir / "index", ignore_errors=True)
    cli.run(["db", "upgrade"], "db-upgrade")
    folders = [workdir / "music"]
    distractor_files = 0
    if args.distractors is not None:
        folders.append(args.distractors.resolve())
        distractor_files = sum(
            1 for path in args.distractors.rglob("*") if path.suffix.lower() in AUDIO_SUFFIXES
        )
    say(f"indexing {len(sources)} tracks and {distractor_files} distractor files")
    indexed = cli.run(["library", "add", *map(str, folders)], "library-add")
    index_seconds = indexed.audio_seconds
    if index_seconds is None:
        say("library add printed no 'N s of audio in M s' line: timing the whole command")
    index = {
        "files": len(sources) + distractor_files,
        "music_files": len(sources),
        "distractor_files": distractor_files,
        "audio_hours": (index_seconds or sum(durations.values())) / 3600,
        "engine_elapsed_s": indexed.elapsed,
        "wall_s": indexed.wall,
        "x_realtime": (
            index_seconds / indexed.elapsed
            if index_seconds is not None and indexed.elapsed
            else sum(durations.values()) / indexed.wall
        ),
        "x_realtime_source": "engine" if index_seconds is not None else "wall clock",
        "peak_rss_mib": indexed.max_rss_kib / 1024,
    }

    results: list[MixResult] = []
    for mix in mixes:
        say(f"identifying {mix.name}")
        results.append(identify(cli, mix, args.min_confidence))
    report(args, workdir, index, results)
    return 0


def report(
    args: argparse.Namespace,
    workdir: Path,
    index: dict[str, Any],
    results: Sequence[MixResult],
) -> None:
    host_info = machine()
    host = machine_name(host_info)
    rows = []
    lines = [
        f"Set2Tracks identification benchmark, seed {args.seed}: {args.mixes} mix(es) of "
        f"{args.tracks_per_mix} excerpts per condition, {MIN_EXCERPT:g}-{MAX_EXCERPT:g} s "
        f"excerpts, crossfades up to {args.crossfade:g} s, EQ, noise, MP3 128k",
        f"Machine: {host}",
        "",
        f"Index: {index['files']} files ({index['music_files']} tracks, "
        f"{index['distractor_files']} distractors), {index['audio_hours']:.2f} h of audio at "
        f"{_fmt(index['x_realtime'], '.0f', 'x')} real time ({index['x_realtime_source']})"
        + _verdict(index["x_realtime"], INDEX_TARGET, at_least=True, unit="x"),
        f"  peak RSS {index['peak_rss_mib']:.0f} MiB (largest single process)",
    ]
    conditions = []
    for percent in args.conditions:
        label = f"±{percent:g} %"
        chosen = [r for r in results if r.mix.condition == label]
        figures = summarize(chosen, args.distractors)
        rows.append((label, figures))
        conditions.append({"max_speed_change_pct": percent, **figures, "mixes_detail": chosen})
        lines += ["", *condition_lines(f"Speed change {label}", figures, targets_for(percent))]
    hour_results = [r for r in results if r.mix.name == "hour"]
    hour = summarize(hour_results, args.distractors) if hour_results else None
    if hour is not None:
        lines += [
            "",
            *condition_lines(f"1-hour mix (±{HOUR_SPEED_CHANGE * 100:g} %)", hour, None),
            f"  {hour['mix_seconds'] / 60:.1f} min identified at "
            f"{_fmt(hour['identify_x_realtime'], '.0f', 'x')} real time"
            + _verdict(hour["identify_x_realtime"], IDENTIFY_TARGET, at_least=True, unit="x"),
        ]
    problems = misses(results)
    lines += ["", f"Misses and false entries ({len(problems)}):", *(problems or ["  none"])]
    lines += ["", "README table:", "", *markdown(rows, index, hour, host)]
    print("\n".join(lines))
    if args.json is not None:
        payload = {
            "machine": host_info,
            "options": {
                key: str(value) if isinstance(value, Path) else value
                for key, value in vars(args).items()
            },
            "workdir": str(workdir),
            "index": index,
            "conditions": [
                {**c, "mixes_detail": [_result_json(r) for r in c["mixes_detail"]]}
                for c in conditions
            ],
            "hour": (
                {**hour, "mixes_detail": [_result_json(r) for r in hour_results]} if hour else None
            ),
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        say(f"figures written to {args.json}")


def _result_json(result: MixResult) -> dict[str, Any]:
    return {
        "name": result.mix.name,
        "path": str(result.mix.path),
        "duration": result.duration,
        "crossfade": result.mix.plan.crossfade,
        "truth": [asdict(entry) for entry in result.mix.truth],
        "reported": [asdict(entry) for entry in result.reported],
        "matches": [asdict(match) for match in result.score.matches],
        "missed": result.score.missed,
        "false": result.score.false,
        "audio_seconds": result.run.audio_seconds,
        "engine_elapsed_s": result.run.elapsed,
        "wall_s": result.run.wall,
        "peak_rss_mib": result.run.max_rss_kib / 1024,
    }


if __name__ == "__main__":
    sys.exit(main())
