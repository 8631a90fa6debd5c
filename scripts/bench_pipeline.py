#!/usr/bin/env python3
"""Benchmark the processing pipeline on a long upload: wall time and a worker's peak memory.

Builds a mix of ``--hours`` hours (default 4) from the 18 tracks of Debian's
``nexuiz-music`` (whole tracks in turn, encoded once to a 128 kbps MP3), then runs the
production profile as it is deployed, each part in its own process:

- a scratch PostgreSQL database and Redis database (``--database-url``, ``--redis-url``);
- ``flask db upgrade``, ``flask library add`` of the tracks (the own library the recognizer
  reads), ``flask users create`` and ``flask tokens create``;
- gunicorn serving the app, which receives the upload through ``POST /api/v1/submissions``
  (streamed from disk, as a browser or ``curl -F`` would send it);
- one ``worker.py --burst`` processing the submission while this script samples, every
  0.1 s, the resident memory of the worker's whole process tree (the worker, its work-horse
  and the ffmpeg it runs) from ``/proc``.

It prints the stages as ``GET /api/v1/submissions/<id>`` reports them, the wall time of
each, the peak RSS of the tree (the sum over its processes at the worst moment) and of its
largest process, and how many of the mix's plays the published tracklist names right
(title, start within 15 s). The target is a peak under 500 MB; the script reports whether
it is met, it does not assert it.

Run from the repository root (PostgreSQL and Redis on their default local ports)::

    .venv/bin/python scripts/bench_pipeline.py                  # the 4-hour run
    .venv/bin/python scripts/bench_pipeline.py --hours 0.5      # a quick one
    .venv/bin/python scripts/bench_pipeline.py --json bench.json --keep

Needs ``apt-get install nexuiz-music``; ffmpeg is the system's or the bundled one.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_identify import PK3, extract_music  # noqa: E402

from set2tracks.fingerprint import audio, scan  # noqa: E402

TARGET_MB = 500.0
START_TOLERANCE = 15.0
SAMPLE_SECONDS = 0.1
PAGE = 4096


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


@dataclass(frozen=True)
class Play:
    title: str
    start: float
    end: float


@dataclass
class Memory:
    """Peak resident memory of a process tree, sampled from /proc."""

    peak_tree_mb: float = 0.0
    peak_process_mb: float = 0.0
    peak_process: str = ""
    samples: int = 0


@dataclass
class Result:
    hours: float
    mix_mb: float
    upload_seconds: float
    processing_seconds: float
    stages: dict[str, float] = field(default_factory=dict)
    memory: Memory = field(default_factory=Memory)
    plays: int = 0
    rows: int = 0
    named_right: int = 0
    status: str = ""
    hidden_from_others: bool = False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=4.0, help="length of the mix (4)")
    parser.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/set2tracks_bench_pipeline",
        help="a scratch PostgreSQL database, dropped and created (default: %(default)s)",
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/8",
        help="a scratch Redis database, emptied (default: %(default)s)",
    )
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if not PK3.exists():
        print(f"Error: {PK3} not found: apt-get install nexuiz-music", file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="s2t-bench-pipeline-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        result = run(args, workdir)
    except BenchError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 0


def run(args: argparse.Namespace, workdir: Path) -> Result:
    tracks = extract_music(PK3, workdir / "music")
    mix = workdir / "mix.mp3"
    plays = build_long_mix(tracks, args.hours * 3600.0, mix)
    app = App(workdir, args.database_url, args.redis_url)
    app.prepare(tracks)
    token = app.token()
    stranger = app.token(app.stranger)
    with app.serving() as base_url:
        started = time.monotonic()
        submission = upload(base_url, token, mix)
        upload_seconds = time.monotonic() - started
        print(f"uploaded {mix.stat().st_size / 1e6:.0f} MB in {upload_seconds:.1f} s", flush=True)
        memory = Memory()
        started = time.monotonic()
        worker = app.worker()
        sampler = threading.Thread(target=sample_tree, args=(worker.pid, memory, worker))
        sampler.start()
        stages = follow(base_url, token, submission["id"], worker)
        worker.wait()
        sampler.join()
        processing = time.monotonic() - started
        final = get_json(base_url, token, f"/api/v1/submissions/{submission['id']}")
        result = Result(
            hours=args.hours,
            mix_mb=round(mix.stat().st_size / 1e6, 1),
            upload_seconds=round(upload_seconds, 1),
            processing_seconds=round(processing, 1),
            stages=stages,
            memory=memory,
            plays=len(plays),
            status=final["status"],
        )
        set_id = final.get("set_id") or (final.get("set") or {}).get("id")
        if set_id is not None:
            tracklist = get_json(base_url, token, f"/api/v1/sets/{set_id}")["tracklist"]
            result.rows = len(tracklist)
            result.named_right = named_right(plays, tracklist)
            for row in tracklist:
                title = (row.get("track") or {}).get("title")
                print(f"  {row['start']:8.1f} {row['end']:8.1f}  {title}")
            for play in plays:
                print(f"  truth {play.start:8.1f} {play.end:8.1f}  {play.title}")
            # An uploaded set is private to its submitter until they publish it.
            status, _ = request(
                base_url, "GET", f"/api/v1/sets/{set_id}", {"Authorization": f"Bearer {stranger}"}
            )
            result.hidden_from_others = status == 404
    return result


def build_long_mix(tracks: list[Path], seconds: float, output: Path) -> list[Play]:
    """Join whole tracks in turn until ``seconds``: each encoded once to a 128 kbps MP3.

    The parts are joined without re-encoding (MP3 frames stand alone). Joining the Ogg
    files directly would not do: each carries its own Vorbis codebooks, and the decoder
    would read every track after the first with the first one's.
    """
    parts = output.parent / "parts"
    parts.mkdir(exist_ok=True)
    print(f"encoding {len(tracks)} tracks to MP3...", flush=True)
    encoded = {}
    for track in tracks:
        part = parts / f"{track.stem}.mp3"
        ffmpeg("-i", str(track), "-vn", "-ar", "44100", "-ac", "2", "-b:a", "128k", str(part))
        encoded[track] = part
    lengths = {track: audio.probe(part).duration for track, part in encoded.items()}
    titles = {track: scan.read_tags(track).title for track in tracks}
    plays: list[Play] = []
    listed: list[str] = []
    at = 0.0
    while at < seconds:
        for track in tracks:
            if at >= seconds:
                break
            plays.append(Play(titles[track], at, at + lengths[track]))
            listed.append(f"file '{encoded[track]}'")
            at += lengths[track]
    playlist = output.with_suffix(".txt")
    playlist.write_text("\n".join(listed) + "\n")
    print(f"joining a {at / 3600:.2f} h mix of {len(plays)} plays...", flush=True)
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(playlist), "-c", "copy", str(output))
    return plays


def ffmpeg(*args: str) -> None:
    subprocess.run(  # noqa: S603 (our own files, fixed options)
        [audio.ffmpeg_path(), "-nostdin", "-v", "error", "-y", *args], check=True
    )


class App:
    """The production profile's processes, on a scratch database and Redis."""

    def __init__(self, workdir: Path, database_url: str, redis_url: str) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.redis_url = redis_url
        self.port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SET2TRACKS", "FLASK"))},
            "SET2TRACKS_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(32),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SITE_URL": f"http://127.0.0.1:{self.port}",
            "FORCE_HTTPS": "false",
            "PORT": str(self.port),
            "UPLOAD_DIR": str(workdir / "uploads"),
            "FINGERPRINT_DIR": str(workdir / "fingerprints"),
            "WORK_DIR": str(workdir / "work"),
            "JOB_TIMEOUT": str(6 * 3600),
            "SUBMISSIONS_PER_HOUR": "100",
            "LOG_LEVEL": "WARNING",
        }
        self.email = "bench@example.com"
        self.stranger = "stranger@example.com"

    def flask(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "flask", "--app", "wsgi", *args],
            cwd=REPO,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(f"flask {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def prepare(self, tracks: list[Path]) -> None:
        reset_database(self.database_url)
        from redis import Redis

        Redis.from_url(self.redis_url).flushdb()
        self.flask("db", "upgrade")
        print(f"indexing {len(tracks)} tracks into the own library...", flush=True)
        self.flask("library", "add", *(str(track) for track in tracks))
        self.flask("library", "publish", *(str(track) for track in tracks))
        for email in (self.email, self.stranger):
            self.flask(
                "users", "create", email, "--password-stdin", stdin=secrets.token_urlsafe(16)
            )

    def token(self, email: str | None = None) -> str:
        answer = self.flask("tokens", "create", email or self.email, "--name", "bench")
        return answer.strip().splitlines()[-1]

    @contextlib.contextmanager
    def serving(self) -> Iterator[str]:
        server = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "600",
                "wsgi:app",
            ],
            cwd=REPO,
            env=self.env,
            stderr=subprocess.DEVNULL,
        )
        base_url = f"http://127.0.0.1:{self.port}"
        try:
            wait_for(base_url, server)
            yield base_url
        finally:
            server.terminate()
            server.wait(timeout=30)

    def worker(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "worker.py", "--burst"],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def reset_database(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    engine = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    engine.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(base_url: str, server: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if server.poll() is not None:
            raise BenchError("gunicorn exited at start-up")
        with contextlib.suppress(OSError):
            if request(base_url, "GET", "/healthz")[0] == 200:
                return
        time.sleep(0.1)
    raise BenchError("gunicorn did not answer /healthz in 30 s")


def request(
    base_url: str,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: Any = None,
) -> tuple[int, bytes]:
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def get_json(base_url: str, token: str, path: str) -> dict[str, Any]:
    status, body = request(base_url, "GET", path, {"Authorization": f"Bearer {token}"})
    if status != 200:
        raise BenchError(f"GET {path} answered {status}: {body[:500]!r}")
    found: dict[str, Any] = json.loads(body)
    return found


def upload(base_url: str, token: str, mix: Path) -> dict[str, Any]:
    """POST the mix as multipart ``file``, streamed from disk in 1 MB chunks."""
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{mix.name}"\r\n'
        "Content-Type: audio/mpeg\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = len(head) + mix.stat().st_size + len(tail)

    def body() -> Iterator[bytes]:
        yield head
        with mix.open("rb") as source:
            while chunk := source.read(1 << 20):
                yield chunk
        yield tail

    status, answer = request(
        base_url,
        "POST",
        "/api/v1/submissions",
        {
            "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(size),
        },
        body(),
    )
    if status != 202:
        raise BenchError(f"the upload answered {status}: {answer[:500]!r}")
    submission: dict[str, Any] = json.loads(answer)
    return submission


def follow(
    base_url: str, token: str, submission_id: int, worker: subprocess.Popen[bytes]
) -> dict[str, float]:
    """Poll the submission until the worker exits; return each stage's wall time."""
    stages: dict[str, float] = {}
    current, since = None, time.monotonic()
    while True:
        state = get_json(base_url, token, f"/api/v1/submissions/{submission_id}")
        stage = state.get("stage")
        if stage != current:
            now = time.monotonic()
            if current is not None:
                stages[current] = round(now - since, 1)
            print(f"  {state['status']:<9} {stage} {state.get('progress', 0)} %", flush=True)
            current, since = stage, now
        if worker.poll() is not None:
            if current is not None and current not in stages:
                stages[current] = round(time.monotonic() - since, 1)
            return stages
        time.sleep(1.0)


def sample_tree(root: int, memory: Memory, worker: subprocess.Popen[bytes]) -> None:
    """Record the peak RSS of ``root`` and its descendants until it exits."""
    while worker.poll() is None:
        total = 0.0
        for pid in descendants(root):
            rss, name = resident_mb(pid)
            total += rss
            if rss > memory.peak_process_mb:
                memory.peak_process_mb, memory.peak_process = round(rss, 1), name
        memory.peak_tree_mb = max(memory.peak_tree_mb, round(total, 1))
        memory.samples += 1
        time.sleep(SAMPLE_SECONDS)


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def resident_mb(pid: int) -> tuple[float, str]:
    try:
        statm = Path(f"/proc/{pid}/statm").read_text().split()
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return 0.0, ""
    return int(statm[1]) * PAGE / 1e6, name


def named_right(plays: list[Play], tracklist: list[dict[str, Any]]) -> int:
    """Plays whose title a row names with a start within ``START_TOLERANCE`` seconds."""
    right = 0
    for play in plays:
        for row in tracklist:
            track = row.get("track") or {}
            title = str(track.get("title") or "")
            if (
                abs(float(row["start"]) - play.start) <= START_TOLERANCE
                and play.title.lower() in title.lower()
            ):
                right += 1
                break
    return right


def report(result: Result) -> None:
    memory = result.memory
    met = "met" if memory.peak_tree_mb < TARGET_MB else "NOT met"
    print()
    print(f"mix: {result.hours:g} h, {result.mix_mb:.0f} MB MP3, {result.plays} plays")
    print(f"upload (POST /api/v1/submissions): {result.upload_seconds:.1f} s")
    print(f"processing (worker.py --burst): {result.processing_seconds:.1f} s")
    for stage, seconds in result.stages.items():
        print(f"  {stage:<10} {seconds:8.1f} s")
    print(
        f"peak RSS of the worker's process tree: {memory.peak_tree_mb:.0f} MB"
        f" (largest process {memory.peak_process} {memory.peak_process_mb:.0f} MB;"
        f" {memory.samples} samples) - target < {TARGET_MB:.0f} MB {met}"
    )
    print(
        f"status {result.status}; {result.rows} rows; {result.named_right} of {result.plays}"
        f" plays named right with a start within {START_TOLERANCE:.0f} s;"
        f" {'404' if result.hidden_from_others else 'VISIBLE'} to another user"
    )


if __name__ == "__main__":
    sys.exit(main())
