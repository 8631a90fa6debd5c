"""Attack drill against a live production-profile app: gunicorn, PostgreSQL, Redis, RQ.

    .venv/bin/python scripts/drill_perimeter.py [--keep]

Builds everything it needs in a temporary folder and removes it afterwards: a throwaway
PostgreSQL cluster (initdb, its own port, so stopping it touches no other database), a
Redis server, an SMTP server that keeps what it receives, gunicorn (2 workers) and an RQ
worker, both in the production profile behind one trusted proxy hop (``X-Forwarded-For``
and ``X-Forwarded-Proto: https`` on every request, as the platform's router sends them).

Then it plays what an attacker, a careless operator and a shared computer would:

1. sign in with "keep me signed in", sign out: the old session and remember cookies must
   no longer reach ``/api/v1/me`` or ``/account``; "sign out everywhere" ends other devices;
2. five wrong passwords from one address: the owner still signs in from another;
3. a password reset and an invite, their links opened, an API token used (it may not mint
   tokens, nor read ``/health``): none of the secrets or cookies appears in the logs;
4. PostgreSQL stopped: a signed-in visitor (session cookie, or remember cookie alone) gets
   a 503 page with ``Retry-After``, the request id and the security headers, no traceback.

Prints one line per check and exits non-zero when any fails. Needs root (the cluster runs
as the ``postgres`` user) or a user that may run ``initdb``; ``redis-server`` on the PATH;
the dev requirements (aiosmtpd).
"""

from __future__ import annotations

import argparse
import glob
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email import message_from_bytes
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "drill correct horse battery"  # noqa: S105 (a throwaway account's)
NEW_PASSWORD = "drill another long passphrase"  # noqa: S105
HEALTH_TOKEN = "drill-health-" + os.urandom(16).hex()
ADMIN = "admin@drill.example"
DJ = "dj@drill.example"
GUESSED = "guessed@drill.example"  # the target of spread-out guessing
SECURITY_HEADERS = (
    "Content-Security-Policy",
    "Strict-Transport-Security",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
)
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def say(text: str) -> None:
    print(text, flush=True)


# ---- the services ---------------------------------------------------------------------------


class Postgres:
    """A throwaway cluster with fsync off, on its own port."""

    def __init__(self, folder: Path) -> None:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not candidates:
            raise SystemExit("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin)")
        self.bin = Path(candidates[-1]).parent
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        folder.mkdir(parents=True)
        if self.as_postgres:
            shutil.chown(folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True)  # noqa: S603

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.folder}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), "-w", "-o",
                  options, "start")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


class Outbox:
    """What the SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(envelope.content)  # type: ignore[attr-defined]
        return "250 OK"

    def wait_for_link(self, pattern: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for raw in self.messages:
                message = message_from_bytes(raw)
                part = message.get_payload(decode=True) if not message.is_multipart() else b""
                body = (part or b"").decode("utf-8", "replace")
                if found := re.search(pattern, body):
                    return found.group(0)
            time.sleep(0.2)
        raise AssertionError(f"no email with a link matching {pattern} arrived")


@dataclass
class Stack:
    folder: Path
    postgres: Postgres
    env: dict[str, str]
    port: int
    logs: list[Path] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, name: str, *command: str) -> None:
        log = self.folder / f"{name}.log"
        self.logs.append(log)
        handle = log.open("wb")
        self.processes.append(
            subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=handle, stderr=handle)  # noqa: S603
        )

    def flask(self, *args: str, stdin: str = "") -> str:
        done = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "flask", "--app", "wsgi", *args],
            cwd=ROOT, env=self.env, input=stdin, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"flask {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def log_text(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in self.logs if path.exists())


@contextmanager
def stack(keep: bool) -> Iterator[tuple[Stack, Outbox]]:
    folder = Path(tempfile.mkdtemp(prefix="s2t-drill-"))
    os.chmod(folder, 0o755)  # noqa: S103 (the postgres user walks into its cluster folder)
    postgres = Postgres(folder / "pg")
    postgres.start()
    redis_port = free_port()
    redis = subprocess.Popen(  # noqa: S603
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",  # noqa: S607
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    outbox = Outbox()
    smtp = Controller(outbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SET2TRACKS", "DATABASE", "REDIS", "FLASK"))
    } | {
        "SET2TRACKS_ENV": "production",
        "SECRET_KEY": "drill-" + os.urandom(24).hex(),
        "DATABASE_URL": postgres.create_database("drill"),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "SITE_URL": "https://set2tracks.example",
        "SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
        "MAIL_FROM": "Set2Tracks <noreply@set2tracks.example>",
        "SIGNUP_MODE": "invite",
        "HEALTH_TOKEN": HEALTH_TOKEN,
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "FINGERPRINT_DIR": str(folder / "fingerprints"),
        "UPLOAD_DIR": str(folder / "uploads"),
    }
    running = Stack(folder, postgres, env, port)
    try:
        running.flask("db", "upgrade")
        running.flask("users", "create", ADMIN, "--admin", "--password-stdin", stdin=PASSWORD)
        running.flask("users", "create", DJ, "--password-stdin", stdin=PASSWORD)
        running.flask("users", "create", GUESSED, "--password-stdin", stdin=PASSWORD)
        running.spawn("web", sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app")
        running.spawn("worker", sys.executable, "worker.py")
        wait_until_serving(port)
        yield running, outbox
    finally:
        for process in running.processes:
            process.send_signal(signal.SIGTERM)
        for process in running.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        smtp.stop()
        redis.terminate()
        redis.wait()
        with suppress(subprocess.CalledProcessError):  # stopped by the outage check already
            postgres.stop()
        if keep:
            say(f"kept {folder} (logs: {', '.join(str(p) for p in running.logs)})")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def wait_until_serving(port: int, path: str = "/healthz", timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Browser(port, "192.0.2.1").get(path).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the app did not answer 200 on {path} within {timeout:.0f} s")


# ---- a browser that keeps cookies by hand ---------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


class Browser:
    """One client behind the router: its own address, cookies kept as a browser would.

    The cookies are ``Secure`` (the app sees HTTPS through the proxy headers), so they are
    kept and sent by hand over the loopback's plain HTTP.
    """

    def __init__(self, port: int, address: str, cookies: dict[str, str] | None = None) -> None:
        self.port = port
        self.address = address
        self.cookies = dict(cookies or {})
        self.extra_headers: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {
            "X-Forwarded-For": self.address,
            "X-Forwarded-Proto": "https",
            "Host": "set2tracks.example",
            **self.extra_headers,
        }
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = "https://set2tracks.example/"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        answer = Answer(
            response.status, response.headers, response.read().decode("utf-8", "replace")
        )
        connection.close()
        for line in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(line)
            for name, morsel in cookie.items():
                expired = morsel["max-age"] == "0" or "1970" in (morsel["expires"] or "")
                if expired or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return answer

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def csrf(self, path: str) -> str:
        page = self.get(path)
        found = _CSRF.search(page.body)
        if not found:
            raise AssertionError(f"no CSRF token on {path} (HTTP {page.status})")
        return found.group(1)

    def post(self, path: str, form: dict[str, str], token_from: str | None = None) -> Answer:
        return self.request("POST", path, {"csrf_token": self.csrf(token_from or path), **form})

    def sign_in(self, email: str, password: str, *, remember: bool = False) -> Answer:
        form = {"email": email, "password": password} | ({"remember": "y"} if remember else {})
        return self.post("/login", form)


# ---- the checks -----------------------------------------------------------------------------


class Report:
    def __init__(self) -> None:
        self.failures = 0

    def check(self, ok: bool, what: str, detail: str = "") -> None:
        self.failures += not ok
        say(f"{'PASS' if ok else 'FAIL'}  {what}" + (f"  ({detail})" if detail else ""))


def remember_me_sign_out(port: int, report: Report) -> None:
    browser = Browser(port, "198.51.100.10")
    signed_in = browser.sign_in(DJ, PASSWORD, remember=True)
    remember = next((name for name in browser.cookies if "remember" in name), None)
    report.check(
        signed_in.status == 302 and remember is not None,
        "sign in with 'keep me signed in' sets a remember cookie",
        f"HTTP {signed_in.status}, cookies {sorted(browser.cookies)}",
    )
    old = dict(browser.cookies)
    report.check(browser.get("/api/v1/me").status == 200, "signed in: /api/v1/me answers 200")
    signed_out = browser.post("/logout", {}, token_from="/account")  # noqa: S106
    report.check(signed_out.status == 302, "sign out", f"HTTP {signed_out.status}")
    for label, cookies in (
        ("old session + remember cookies", old),
        ("old remember cookie alone", {remember: old[remember]} if remember else {}),
    ):
        replay = Browser(port, "198.51.100.10", cookies)
        me = replay.get("/api/v1/me").status
        account = replay.get("/account")
        report.check(
            me == 401 and account.status == 302 and "/login" in (account.header("Location") or ""),
            f"after sign-out, {label} reach neither /api/v1/me nor /account",
            f"/api/v1/me {me}, /account {account.status}",
        )


def sign_out_everywhere(port: int, report: Report) -> None:
    laptop, phone = Browser(port, "198.51.100.11"), Browser(port, "198.51.100.12")
    laptop.sign_in(DJ, PASSWORD, remember=True)
    phone.sign_in(DJ, PASSWORD, remember=True)
    phone_cookies = dict(phone.cookies)
    done = laptop.post("/account/sign-out-everywhere", {}, token_from="/account")  # noqa: S106
    remember = next((name for name in phone_cookies if "remember" in name), "")
    statuses = [
        Browser(port, "198.51.100.12", cookies).get("/api/v1/me").status
        for cookies in (phone_cookies, {remember: phone_cookies.get(remember, "")})
    ]
    report.check(
        done.status == 302 and statuses == [401, 401],
        "'sign out everywhere' ends another device's session and remember cookie",
        f"HTTP {done.status}; the other device's session, remember cookie: {statuses}",
    )


def no_lockout_of_the_owner(port: int, report: Report) -> None:
    statuses = [
        Browser(port, "203.0.113.66").sign_in(DJ, "wrong " + PASSWORD).status for _ in range(6)
    ]
    report.check(
        statuses[:5] == [401] * 5 and statuses[5] == 429,
        "five wrong passwords from one address, the sixth try refused there",
        f"statuses {statuses}",
    )
    owner = Browser(port, "198.51.100.77")
    signed_in = owner.sign_in(DJ, PASSWORD)
    me = owner.get("/api/v1/me").status
    report.check(
        signed_in.status == 302 and me == 200,
        "the owner still signs in from another address",
        f"sign-in {signed_in.status}, /api/v1/me {me}",
    )


def account_cap_across_addresses(port: int, report: Report) -> None:
    owner = Browser(port, "203.0.113.90")
    first = owner.sign_in(GUESSED, PASSWORD)
    device = {name: value for name, value in owner.cookies.items() if "device" in name}
    for address in range(10):
        guesser = Browser(port, f"198.51.100.{100 + address}")
        for n in range(5):
            guesser.sign_in(GUESSED, f"wrong guess {n} {PASSWORD}")
    stranger = Browser(port, "203.0.113.91").sign_in(GUESSED, PASSWORD)
    report.check(
        first.status == 302
        and stranger.status == 429
        and bool(stranger.header("Retry-After"))
        and "reset your password by email" in stranger.body,
        "10 addresses x 5 wrong passwords: a new browser is refused at once, offered the reset",
        f"first sign-in {first.status}, new browser {stranger.status}, "
        f"Retry-After {stranger.header('Retry-After')}",
    )
    known = Browser(port, "203.0.113.92", device).sign_in(GUESSED, PASSWORD)
    report.check(
        bool(device) and known.status == 302,
        "the owner's known browser still signs in past the account cap",
        f"device cookie {'set' if device else 'missing'}, sign-in {known.status}",
    )


def secrets_stay_out_of_logs(running: Stack, outbox: Outbox, report: Report) -> None:
    port = running.port
    visitor = Browser(port, "198.51.100.20")
    asked = visitor.post("/reset-password", {"email": DJ})
    link = outbox.wait_for_link(r"https?://\S+/reset-password/\S+")
    report.check(
        asked.status == 200 and link.startswith("https://set2tracks.example/"),
        "the reset email's link is built from SITE_URL",
        link.split("/reset-password/")[0],
    )
    reset_path = urlsplit(link).path
    reset_token = reset_path.rsplit("/", 1)[-1]
    opened = visitor.get(reset_path).status
    changed = visitor.post(reset_path, {"password": NEW_PASSWORD})
    report.check(
        opened == 200 and changed.status == 302,
        "the reset link opens and sets a new password",
        f"GET {opened}, POST {changed.status}",
    )

    admin = Browser(port, "198.51.100.30")
    admin.sign_in(ADMIN, PASSWORD)
    created = admin.post("/admin/invites", {"email": "", "days": "7"})
    invite = re.search(r'<code class="secret">([^<]+)</code>', created.body)
    invite_link = invite.group(1) if invite else ""
    invite_path = urlsplit(invite_link).path
    opened_invite = Browser(port, "198.51.100.31").get(invite_path).status if invite else 0
    report.check(
        created.status == 201 and invite_link.startswith("https://set2tracks.example/")
        and opened_invite == 200,
        "an admin's invite link is built from SITE_URL and opens",
        f"create {created.status}, open {opened_invite}",
    )  # fmt: skip
    invite_code = invite_path.rsplit("/", 1)[-1]

    token = running.flask("tokens", "create", ADMIN, "--name", "drill").strip().splitlines()[-1]
    api = Browser(port, "198.51.100.32")
    api.extra_headers["Authorization"] = f"Bearer {token}"
    used = api.get("/api/v1/me").status
    minted = api.request("POST", "/api/v1/me/tokens").status
    report.check(minted == 403, "an API token cannot mint more tokens", f"HTTP {minted}")
    health = [Browser(port, "198.51.100.33").get("/health").status, api.get("/health").status]
    api.extra_headers["Authorization"] = f"Bearer {HEALTH_TOKEN}"
    health.append(api.get("/health").status)
    report.check(
        health == [401, 401, 200],
        "/health: refused anonymously and to a personal token, open to HEALTH_TOKEN",
        f"statuses {health}",
    )
    time.sleep(1.0)  # let the worker and gunicorn flush their lines
    logs = running.log_text()
    leaked = [
        name
        for name, secret in (("reset token", reset_token), ("invite code", invite_code),
                             ("API token", token), *(("cookie " + k, v) for k, v in
                             (visitor.cookies | admin.cookies).items()))
        if secret and secret in logs
    ]  # fmt: skip
    report.check(
        used == 200 and not leaked and bool(reset_token) and bool(invite_code),
        "no reset token, invite code, API token or cookie in the web and worker logs",
        f"{len(logs.splitlines())} log lines scanned" + (f"; leaked: {leaked}" if leaked else ""),
    )


def database_outage(running: Stack, report: Report) -> None:
    port = running.port
    visitor = Browser(port, "198.51.100.40")
    visitor.sign_in(ADMIN, PASSWORD, remember=True)
    remember = next((name for name in visitor.cookies if "remember" in name), "")
    before = len(running.log_text().splitlines())
    running.postgres.stop()
    try:
        for label, cookies in (
            ("session cookie", dict(visitor.cookies)),
            ("remember cookie alone", {remember: visitor.cookies.get(remember, "")}),
        ):
            for path in ("/account", "/"):
                answer = Browser(port, "198.51.100.40", cookies).get(path)
                missing = [name for name in SECURITY_HEADERS if not answer.header(name)]
                ok = (
                    answer.status == 503
                    and answer.header("Retry-After") is not None
                    and answer.header("X-Request-ID")
                    and not missing
                    and "Traceback" not in answer.body
                    and "text/html" in (answer.header("Content-Type") or "")
                )
                report.check(
                    bool(ok),
                    f"PostgreSQL down, {label}, GET {path}: 503 page, Retry-After, headers",
                    f"HTTP {answer.status}, Retry-After {answer.header('Retry-After')}"
                    + (f", missing {missing}" if missing else ""),
                )
        outage_lines = running.log_text().splitlines()[before:]
        tracebacks = sum("Traceback" in line for line in outage_lines)
        report.check(
            tracebacks == 0, "no traceback logged during the outage", f"{tracebacks} found"
        )
    finally:
        running.postgres.start()
    wait_until_serving(port, "/readyz")
    back = Browser(port, "198.51.100.40", visitor.cookies).get("/account").status
    report.check(back == 200, "PostgreSQL back: the same visitor is served again", f"HTTP {back}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the folder with the logs")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server not found (Debian/Ubuntu: apt-get install redis-server)")
    report = Report()
    with stack(args.keep) as (running, outbox):
        say(f"production profile on 127.0.0.1:{running.port}, logs in {running.folder}")
        remember_me_sign_out(running.port, report)
        sign_out_everywhere(running.port, report)
        no_lockout_of_the_owner(running.port, report)
        account_cap_across_addresses(running.port, report)
        secrets_stay_out_of_logs(running, outbox, report)
        database_outage(running, report)
    say("all checks passed" if not report.failures else f"{report.failures} check(s) failed")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
