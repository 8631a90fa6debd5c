"""The own-library fingerprint engine: index audio files, then find them inside a mix.

Free of Flask: the CLI and the pipeline's ``library`` recognizer call it through this
interface. The engine itself arrives with the own-library recognition issue.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class LibraryMatch:
    """A library file found inside a mix."""

    library_file_id: int
    start: float
    end: float
    confidence: float
    speed: float
    pitch: float


class Engine(Protocol):
    def index_file(self, library_file_id: int, path: Path) -> int:
        """Fingerprint one file into the index; return how many fingerprints were stored."""
        ...

    def identify(self, chunks: Iterable[bytes], sample_rate: int) -> Iterator[LibraryMatch]:
        """Stream mono 16-bit PCM through the matcher, yielding matches in mix order."""
        ...
