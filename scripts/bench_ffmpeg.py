#!/usr/bin/env python3
"""Compare decoding speed: the system ffmpeg against the one the imageio-ffmpeg wheel ships.

The project decodes with the system ffmpeg when one is on the PATH, else with the bundled
binary (``set2tracks.fingerprint.audio.resolve_ffmpeg``); the bundled one must stay within
20 % of the system's speed. This script measures that on real music: the tracks of Debian's
``nexuiz-music`` package (``/usr/share/games/nexuiz/data/music.pk3``, a zip of .ogg files),
joined into one program of ``--minutes`` and encoded as MP3 192k, AAC/M4A 128k, Opus/WebM
128k, FLAC and Ogg Vorbis (the formats mixes are uploaded in).

Each run is ``audio.decode`` exactly as the pipeline calls it (mono 8 kHz float32, read in
30 s blocks), in a fresh Python process whose PATH either holds the system ffmpeg or holds
no ffmpeg at all, so the project's own resolution picks the binary. The child times only
the decode loop: wall seconds, and the CPU seconds of ffmpeg (its own process). Runs of the
two binaries alternate, and each figure is the median of ``--runs``. ``--one-core`` pins
everything to one CPU, a stand-in for a machine busy with other work.

Run from the repository root::

    .venv/bin/python scripts/bench_ffmpeg.py                  # 20 min of music, 3 runs
    .venv/bin/python scripts/bench_ffmpeg.py --one-core --json bench.json
    .venv/bin/python scripts/bench_ffmpeg.py --minutes 5 --runs 1   # smoke run

Needs a system ffmpeg (to compare with) and ``apt-get install nexuiz-music``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parent.parent
# Run as a file, the script sees scripts/ on sys.path, not the repository root.
sys.path.insert(0, str(REPO))

from set2tracks.fingerprint import audio  # noqa: E402

PK3 = Path("/usr/share/games/nexuiz/data/music.pk3")
# name -> encoder arguments; the program is 44.1 kHz stereo, as music is sold.
FORMATS = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "192k"],
    "m4a": ["-c:a", "aac", "-b:a", "128k"],
    "webm": ["-c:a", "libopus", "-b:a", "128k"],
    "flac": ["-c:a", "flac"],
    "ogg": ["-c:a", "libvorbis", "-q:a", "5"],
}
TARGET = 0.20  # the bundled binary may be at most this much slower


@dataclass(frozen=True)
class Run:
    """One decode: which binary, how long it took, and how much audio came out."""

    ffmpeg: str
    wall: float
    cpu: float
    samples: int


@dataclass(frozen=True)
class Row:
    """Medians for one file: system against bundled."""

    file: str
    system_wall: float
    system_cpu: float
    bundled_wall: float
    bundled_cpu: float
    change: float  # bundled wall time against the system's, e.g. 0.08 = 8 % slower


def decode_once(path: Path) -> None:
    """Child mode: decode ``path`` as the pipeline does and print the figures as JSON."""
    ffmpeg = audio.resolve_ffmpeg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    samples = sum(len(block) for block in audio.decode(path))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    kind = "bundled" if ffmpeg.bundled else "system"
    print(json.dumps(asdict(Run(kind, round(wall, 3), round(cpu, 3), samples))))


def path_without_ffmpeg(folder: Path) -> str:
    """A PATH with every program of this one but ffmpeg and ffprobe (links in ``folder``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or not Path(directory).is_dir():
            continue
        for tool in Path(directory).iterdir():
            link = folder / tool.name
            if tool.name in {"ffmpeg", "ffprobe"} or link.exists() or link.is_symlink():
                continue
            link.symlink_to(tool)
    return str(folder)


def build_program(pk3: Path, workdir: Path, minutes: float) -> Path:
    """Join the pk3's tracks in order into one WAV of ``minutes`` (kept between runs)."""
    program = workdir / f"program-{minutes:g}min.wav"
    if program.exists():
        return program
    music = workdir / "music"
    music.mkdir(parents=True, exist_ok=True)
    tracks = []
    with zipfile.ZipFile(pk3) as archive:
        for member in sorted(archive.infolist(), key=lambda item: item.filename):
            if member.is_dir() or not member.filename.lower().endswith(".ogg"):
                continue
            # Only the base name: a member path can never write outside the music folder.
            target = music / PurePosixPath(member.filename).name
            if not target.exists():
                target.write_bytes(archive.read(member))
            tracks.append(target)
    if not tracks:
        raise SystemExit(f"{pk3} holds no .ogg files")
    inputs: list[str] = []
    for track in tracks:
        inputs += audio.input_args(track)
    joined = "".join(f"[{index}:a]" for index in range(len(tracks)))
    graph = f"{joined}concat=n={len(tracks)}:v=0:a=1,aresample=44100,aformat=channel_layouts=stereo"
    ffmpeg(
        *inputs,
        "-filter_complex",
        graph,
        "-t",
        f"{minutes * 60:.3f}",
        "-c:a",
        "pcm_s16le",
        audio.file_url(program),
    )
    probed = audio.probe(program).duration
    if probed < minutes * 60 - 1:
        raise SystemExit(f"the pk3 holds only {probed / 60:.1f} min of music: lower --minutes")
    return program


def encode(program: Path, workdir: Path, names: list[str]) -> list[Path]:
    """Encode the program in each format (kept between runs)."""
    files = []
    for name in names:
        target = workdir / f"{program.stem}.{name}"
        if not target.exists():
            print(f"encoding {target.name} ...", file=sys.stderr)
            partial = target.with_name(f"partial-{target.name}")
            ffmpeg(*audio.input_args(program), *FORMATS[name], audio.file_url(partial))
            partial.rename(target)
        files.append(target)
    return files


def ffmpeg(*args: str) -> None:
    """Run the system ffmpeg to prepare inputs (never timed)."""
    subprocess.run(  # noqa: S603 (an argument list, no shell)
        [audio.ffmpeg_path(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
    )


def measure(path: Path, search_path: str) -> Run:
    """Decode ``path`` in a child whose PATH is ``search_path``."""
    env = {**os.environ, "PATH": search_path}
    result = subprocess.run(  # noqa: S603 (this very script, an argument list)
        [sys.executable, str(Path(__file__).resolve()), "--decode", str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    return Run(**payload)


def bench(files: list[Path], runs: int, bare_path: str) -> list[Row]:
    """Decode every file ``runs`` times with each binary, alternating, and take medians."""
    system_path = os.environ.get("PATH", "")
    rows = []
    for path in files:
        measured: dict[str, list[Run]] = {"system": [], "bundled": []}
        for index in range(runs):
            # Alternate which binary goes first, so a drift in load hits both alike.
            order = [("system", system_path), ("bundled", bare_path)]
            for expected, search_path in order if index % 2 == 0 else order[::-1]:
                run = measure(path, search_path)
                if run.ffmpeg != expected:
                    raise SystemExit(f"expected the {expected} ffmpeg, the child ran {run.ffmpeg}")
                measured[expected].append(run)
        samples = {run.samples for kind_runs in measured.values() for run in kind_runs}
        if max(samples) - min(samples) > audio.SAMPLE_RATE // 10:
            raise SystemExit(f"{path.name}: the binaries decoded different lengths {samples}")
        system_wall = statistics.median(run.wall for run in measured["system"])
        bundled_wall = statistics.median(run.wall for run in measured["bundled"])
        row = Row(
            file=path.name,
            system_wall=round(system_wall, 2),
            system_cpu=round(statistics.median(run.cpu for run in measured["system"]), 2),
            bundled_wall=round(bundled_wall, 2),
            bundled_cpu=round(statistics.median(run.cpu for run in measured["bundled"]), 2),
            change=round(bundled_wall / system_wall - 1, 3),
        )
        print(f"{row.file}: {row.system_wall} s / {row.bundled_wall} s", file=sys.stderr)
        rows.append(row)
    return rows


def versions(bare_path: str) -> dict[str, str]:
    """The first line of ``ffmpeg -version`` of each binary."""
    found = {}
    for kind, search_path in (("system", os.environ.get("PATH", "")), ("bundled", bare_path)):
        binary = shutil.which("ffmpeg", path=search_path)
        if binary is None:
            import imageio_ffmpeg  # only the bundled side needs it

            binary = imageio_ffmpeg.get_ffmpeg_exe()
        first = subprocess.run(  # noqa: S603 (an argument list)
            [binary, "-version"], capture_output=True, text=True, check=True
        ).stdout.splitlines()[0]
        found[kind] = f"{binary}: {first}"
    return found


def report(
    rows: list[Row], minutes: float, runs: int, one_core: bool, load: tuple[float, float]
) -> None:
    """Print the table in Markdown, as the README shows it."""
    cores = "pinned to 1 core" if one_core else f"{os.cpu_count()} cores"
    print(
        f"\n{minutes:g} min of music, median of {runs} runs, {cores}, load average"
        f" {load[0]:.1f} before / {load[1]:.1f} after; wall s / ffmpeg CPU s (user + sys)\n"
    )
    print("| file | system ffmpeg | bundled ffmpeg | change |")
    print("|---|---|---|---|")
    for row in rows:
        flag = "" if row.change <= TARGET else " (over 20 %)"
        print(
            f"| {row.file.split('.')[-1]} | {row.system_wall:.2f} / {row.system_cpu:.2f}"
            f" | {row.bundled_wall:.2f} / {row.bundled_cpu:.2f} | {row.change:+.0%}{flag} |"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pk3", type=Path, default=PK3, help="zip of .ogg music (nexuiz)")
    parser.add_argument("--minutes", type=float, default=20.0, help="length of the program")
    parser.add_argument("--runs", type=int, default=3, help="decodes per file and binary")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated")
    parser.add_argument("--one-core", action="store_true", help="pin everything to CPU 0")
    parser.add_argument("--workdir", type=Path, help="keep the music and encodes here")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--decode", type=Path, help=argparse.SUPPRESS)  # child mode
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.decode is not None:
        decode_once(args.decode)
        return
    names = [name for name in args.formats.split(",") if name]
    if unknown := set(names) - set(FORMATS):
        raise SystemExit(f"unknown formats {sorted(unknown)}; known: {', '.join(FORMATS)}")
    if shutil.which("ffmpeg") is None:
        raise SystemExit("no system ffmpeg on the PATH: nothing to compare the bundled one with")
    if not args.pk3.is_file():
        raise SystemExit(f"{args.pk3} not found: apt-get install nexuiz-music")
    if args.one_core:
        os.sched_setaffinity(0, {0})  # children inherit it
    with tempfile.TemporaryDirectory(prefix="s2t-bench-ffmpeg-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        bare_path = path_without_ffmpeg(Path(scratch) / "bin")
        program = build_program(args.pk3, workdir, args.minutes)
        files = encode(program, workdir, names)
        found = versions(bare_path)
        # Other programs' load changes the figures (FFmpeg 7+ threads suffer more): say it.
        load_before = os.getloadavg()[0]
        rows = bench(files, args.runs, bare_path)
        load = (load_before, os.getloadavg()[0])
    for kind, line in found.items():
        print(f"{kind}: {line}")
    report(rows, args.minutes, args.runs, args.one_core, load)
    if args.json is not None:
        payload = {
            "minutes": args.minutes,
            "runs": args.runs,
            "one_core": args.one_core,
            "cpus": os.cpu_count(),
            "load_average": load,
            "versions": found,
            "rows": [asdict(row) for row in rows],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
