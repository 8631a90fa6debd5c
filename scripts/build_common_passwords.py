"""Rebuild set2tracks/auth/data/common-passwords.txt from Django's list of common passwords.

Source: the Django wheel from PyPI (package ``Django``, BSD-3-Clause, Copyright (c) Django
Software Foundation and individual contributors; https://www.djangoproject.com/, code at
https://github.com/django/django), member ``django/contrib/auth/common-passwords.txt.gz``:
the 20,000 common passwords compiled by Royce Williams
(https://gist.github.com/roycewilliams/226886fd01572964e1431ac8afc999ce), which Django ships
lower-cased and deduplicated, most frequent first. The data file was built from Django 5.2.19.

The source order is kept. Entries the app's loader could not read back (empty, longer than
128 characters, starting with "#", holding a line break) are dropped, the rest lower-cased and
deduplicated, and the first 10,000 written with a provenance header line.

Download the wheel, never install it:

    pip download --no-deps "django==5.2.19" -d /tmp/django
    python scripts/build_common_passwords.py /tmp/django/django-5.2.19-py3-none-any.whl

A bare ``common-passwords.txt.gz`` or plain-text copy works too, with ``--django-version``.
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

MEMBER = "django/contrib/auth/common-passwords.txt.gz"
COUNT = 10_000
MAX_LENGTH = 128
DEFAULT_OUTPUT = (
    Path(__file__).resolve().parent.parent / "set2tracks" / "auth" / "data" / "common-passwords.txt"
)
_WHEEL_NAME = re.compile(r"django-(?P<version>[^-]+)-.*\.whl", re.IGNORECASE)


def read_source(path: Path) -> tuple[list[str], str | None]:
    """Return the source's entries in order and the Django version named by a wheel's file name."""
    match = _WHEEL_NAME.fullmatch(path.name)
    if match:
        with zipfile.ZipFile(path) as wheel:
            raw = gzip.decompress(wheel.read(MEMBER))
        version: str | None = match["version"]
    else:
        raw = path.read_bytes()
        # A gzip stream starts with these two bytes; anything else is taken as plain text.
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        version = None
    # Split on "\n" only: str.splitlines() would also cut entries at rarer separators.
    entries = [line.removesuffix("\r") for line in raw.decode("utf-8").split("\n")]
    return entries, version


def select(entries: Iterable[str], count: int = COUNT) -> list[str]:
    """Return the first ``count`` loadable, lower-cased, distinct entries, in source order."""
    kept: dict[str, None] = {}
    for entry in entries:
        lowered = entry.lower()
        # The loader skips "#" lines and reads one entry per line, so such entries could not
        # be read back; an entry over the length limit could never be an accepted password.
        if (
            lowered.splitlines() != [lowered]
            or lowered.startswith("#")
            or len(lowered) > MAX_LENGTH
        ):
            continue
        kept.setdefault(lowered)
        if len(kept) == count:
            break
    return list(kept)


def header(version: str, count: int) -> str:
    """Return the provenance comment line written at the top of the data file."""
    return (
        f"# Top {count:,} common passwords, lower-cased, most frequent first. From Django "
        f"{version} (BSD-3-Clause, Copyright (c) Django Software Foundation and individual "
        f"contributors; https://www.djangoproject.com/), {MEMBER}, list by Royce Williams. "
        "Rebuild with scripts/build_common_passwords.py."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Write the data file from the source named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("source", type=Path, help="Django wheel, or common-passwords.txt[.gz]")
    parser.add_argument("--django-version", help="version of the source (read from a wheel name)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    entries, wheel_version = read_source(args.source)
    version = args.django_version or wheel_version
    if not version:
        parser.error("--django-version is needed when the source is not a Django wheel")
    selected = select(entries)
    if len(selected) < COUNT:
        parser.error(f"the source yields {len(selected)} usable entries, fewer than {COUNT}")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join([header(version, COUNT), *selected]) + "\n"
    args.output.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {len(selected)} passwords from Django {version} to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
