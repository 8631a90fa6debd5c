"""The image and the compose stack agree: every volume the app mounts is writable by it.

No Docker engine runs in the test environment, so this reads the Dockerfile and
docker-compose.yml instead of building them.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_USER = "app"


def _instructions() -> list[tuple[str, str]]:
    """Return the Dockerfile's instructions as (keyword, arguments), continuations joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            found.append((keyword.upper(), arguments.strip()))
    return found


def _prepared_for_app_user() -> tuple[set[str], set[str], dict[str, str]]:
    """Return the directories created and chowned to the app user before ``USER``, and ENV."""
    assert ("USER", APP_USER) in _instructions(), "the image must not run as root"
    created: set[str] = set()
    owned: set[str] = set()
    environment: dict[str, str] = {}
    for keyword, arguments in _instructions():
        if keyword == "USER":
            break
        if keyword == "ENV":
            environment.update(pair.split("=", 1) for pair in shlex.split(arguments) if "=" in pair)
        if keyword != "RUN":
            continue
        for command in re.split(r"&&|;", arguments):
            words = shlex.split(command)
            if words[:2] == ["mkdir", "-p"]:
                created.update(words[2:])
            elif words[:1] == ["chown"]:
                owner, *paths = [word for word in words[1:] if not word.startswith("-")]
                if owner.split(":")[0] == APP_USER:
                    owned.update(paths)
    return created, owned, environment


def _app_services() -> dict[str, dict[str, object]]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image") == "set2tracks:local" or "build" in service
    }


def test_every_volume_the_app_mounts_is_created_and_owned_by_the_app_user() -> None:
    created, owned, _ = _prepared_for_app_user()
    services = _app_services()
    assert {"web", "worker", "migrate"} <= set(services)

    targets = set()
    for service in services.values():
        for volume in service.get("volumes", []):  # type: ignore[attr-defined]
            targets.add(str(volume).split(":")[1])

    assert "/data/fingerprints" in targets
    for target in sorted(targets):
        assert target in created, f"{target} is not created in the image"
        assert target in owned, f"{target} is not chowned to the app user"


def test_data_directories_point_at_writable_places_in_image_and_stack() -> None:
    _, owned, environment = _prepared_for_app_user()

    for service in _app_services().values():
        settings = service["environment"]
        for name in ("UPLOAD_DIR", "FINGERPRINT_DIR"):
            assert settings[name] in owned, f"{name} in compose"  # type: ignore[index]
    # Without compose, the image's own defaults must be writable too.
    for name in ("UPLOAD_DIR", "FINGERPRINT_DIR"):
        assert environment.get(name) in owned, f"{name} in the Dockerfile"
