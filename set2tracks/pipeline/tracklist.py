"""The *tracklist* stage: recognizers' plays in, the rows of a tracklist out.

A pure function of its input (no database, no app): the save stage stores what it returns.
The rules, in the order they apply, are in ``build_tracklist``'s docstring; the README's
"Tracklist rules" section says the same for people.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from set2tracks.pipeline.plays import Play, TrackRef

# A stretch nobody identified shorter than this is the uncertainty of two plays' edges, not
# music: its neighbours meet across it (at its middle) instead of an unknown row. Tracks
# played back to back leave 1-2 s between the engine's edges (encoder padding, the last
# and first recognisable notes), and no recognizer names a track from under 3 s of it.
SLIVER_SECONDS = 3.0
# Two plays of one track further apart than this stay two rows with an unknown row between,
# even when nothing else was heard there: a DJ may play a track twice, and twenty unknown
# minutes between the two are other music, not one very long play. Breakdowns that a
# recognizer misses are shorter.
MAX_BRIDGE_SECONDS = 120.0
# A play lying wholly inside a longer play of another track, with less than this share of
# the longer play's confidence, is an echo (a remix or sample faintly matched under the
# track really playing): dropped. Anything more confident was played over it: kept.
ECHO_RATIO = 0.5

_KEYS = ("library_file_id", "shazam_key", "isrc")
# What a track's ref takes from its other plays' refs when its own lacks it.
_FILLED = (*_KEYS, "artist", "album")


def build_tracklist(plays: Sequence[Play], duration: float) -> list[Play]:
    """Return the rows of a set's tracklist: in order, covering 0 to ``duration``, no overlap.

    The rules, applied in this order:

    1. Plays without a track, empty or outside the set are ignored; the others are clipped
       to ``0..duration``. Plays from several recognizers (``found_by``) mix freely.
    2. Plays of one track (``TrackRef.same_track``, followed through shared keys) that
       overlap or touch become one play: confidence the highest, speed and pitch the means
       weighted by duration, ``found_by`` of the most confident play. Every row of a track
       holds one ``TrackRef``: its most confident play's, with the keys (and artist, album)
       it lacks filled in from the track's other plays.
    3. A play wholly inside a longer play of another track is an echo, and dropped, when
       its confidence is under ``ECHO_RATIO`` times the longer one's; without both
       confidences nothing is dropped.
    4. Two plays of one track with a gap between them become one row when nothing else
       was heard in the gap and it is at most ``MAX_BRIDGE_SECONDS`` long. A different
       track heard between them keeps them apart: it is never swallowed.
    5. A shorter play inside a longer one of another track is what a DJ did when dropping
       a track over another: the longer one is split around it (A, B, A). Overlapping
       plays of different tracks (crossfades) are cut at the middle of their overlap. A
       row cut this way keeps its whole play's confidence and speed.
    6. Stretches nobody identified are rows with ``track`` None (no confidence, speed or
       found_by), never absorbed into a neighbour, except slivers under
       ``SLIVER_SECONDS``: the neighbours meet in their middle (or at 0 and ``duration``).

    Rows touch exactly (each one's end is the next one's start), and two neighbouring rows
    never hold the same track. No plays: one unknown row; ``duration`` 0: no rows. The order
    of ``plays`` does not matter.
    """
    if not math.isfinite(duration) or duration < 0:
        raise ValueError(f"a set's duration is a finite number of seconds, not {duration!r}")
    usable = [play for play in (_clip(play, duration) for play in plays) if play is not None]
    # In a canonical order: the rows do not depend on the order recognizers answered in.
    usable.sort(key=lambda play: (play.start, play.end, repr(play)))
    spans = _merge_each_track(usable)
    spans = _drop_echoes(spans)
    spans = _drop_echoes(_bridge(spans))
    pieces = _resolve(spans)
    return _rows(pieces, duration)


@dataclass
class _Span:
    """Plays of one track merged into one stretch: a row, unless something cuts it."""

    track: int  # which track: a number given to each track heard in the input
    start: float
    end: float
    plays: list[Play] = field(default_factory=list)

    @cached_property
    def confidence(self) -> float | None:
        known = [play.confidence for play in self.plays if play.confidence is not None]
        return max(known) if known else None

    def contains(self, other: _Span) -> bool:
        """Whether ``other`` lies within this span (the same stretch counts)."""
        return self.start <= other.start and other.end <= self.end


@dataclass
class _Piece:
    """A stretch of the final tracklist won by one span (``span`` None: nobody's)."""

    span: _Span | None
    start: float
    end: float


def _clip(play: Play, duration: float) -> Play | None:
    if play.track is None or not (math.isfinite(play.start) and math.isfinite(play.end)):
        return None
    start, end = max(play.start, 0.0), min(play.end, duration)
    if end <= start:
        return None
    return play if (start, end) == (play.start, play.end) else play.moved(start, end)


def _track_numbers(plays: Sequence[Play]) -> list[int]:
    """Number the tracks heard: plays sharing a key, directly or through others, share one.

    Refs without any key (a title alone) are a track each, as ``TrackRef.same_track`` says.
    """
    parent = list(range(len(plays)))

    def root(item: int) -> int:
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    first_with: dict[tuple[str, object], int] = {}
    for index, play in enumerate(plays):
        assert play.track is not None
        for key in _KEYS:
            value = getattr(play.track, key)
            if value is not None:
                parent[root(index)] = root(first_with.setdefault((key, value), index))
    numbers: dict[int, int] = {}
    return [numbers.setdefault(root(index), len(numbers)) for index in range(len(plays))]


def _merge_each_track(plays: Sequence[Play]) -> list[_Span]:
    """Rule 2: the overlapping or touching plays of each track as one span."""
    by_track: dict[int, list[Play]] = {}
    for number, play in zip(_track_numbers(plays), plays, strict=True):
        by_track.setdefault(number, []).append(play)
    spans: list[_Span] = []
    for number, own in by_track.items():
        own.sort(key=lambda play: (play.start, play.end))
        current: _Span | None = None
        for play in own:
            if current is not None and play.start <= current.end:
                current.end = max(current.end, play.end)
                current.plays.append(play)
            else:
                current = _Span(number, play.start, play.end, [play])
                spans.append(current)
    return _ordered(spans)


def _ordered(spans: Iterable[_Span]) -> list[_Span]:
    return sorted(spans, key=lambda span: (span.start, span.end, span.track))


def _drop_echoes(spans: list[_Span]) -> list[_Span]:
    """Rule 3: leave out the spans that are echoes of a longer span of another track."""
    kept: list[_Span] = []
    earlier: list[_Span] = []  # spans started before the current one and still playing
    for index, inner in enumerate(spans):
        earlier = [span for span in earlier if span.end > inner.start]
        # A span containing ``inner`` starts before it, or at the same time (sorted later).
        same_start = []
        for later in spans[index + 1 :]:
            if later.start > inner.start:
                break
            same_start.append(later)
        if not any(_is_echo(inner, outer) for outer in (*earlier, *same_start)):
            kept.append(inner)
        earlier.append(inner)
    return kept


def _is_echo(inner: _Span, outer: _Span) -> bool:
    if outer.track == inner.track or not outer.contains(inner):
        return False
    if inner.confidence is None or outer.confidence is None:
        return False
    return inner.confidence < ECHO_RATIO * outer.confidence


def _bridge(spans: list[_Span]) -> list[_Span]:
    """Rule 4: join spans of one track across a short gap nothing else was heard in."""
    # Whether anything plays in a gap: the latest end among the spans starting before the
    # gap ends. Spans of the gap's own track never reach into it (they were merged).
    starts = [span.start for span in spans]
    latest_end = list(itertools.accumulate((span.end for span in spans), max))
    by_track: dict[int, list[_Span]] = {}
    for span in spans:
        by_track.setdefault(span.track, []).append(span)
    bridged: list[_Span] = []
    for own in by_track.values():
        current = own[0]
        for following in own[1:]:
            gap_start, gap_end = current.end, following.start
            before_gap_end = bisect.bisect_left(starts, gap_end)
            heard_between = before_gap_end > 0 and latest_end[before_gap_end - 1] > gap_start
            if gap_end - gap_start <= MAX_BRIDGE_SECONDS and not heard_between:
                plays = current.plays + following.plays
                current = _Span(current.track, current.start, following.end, plays)
            else:
                bridged.append(current)
                current = following
        bridged.append(current)
    return _ordered(bridged)


def _resolve(spans: list[_Span]) -> list[_Piece]:
    """Rule 5: give each instant to one span, the innermost, else by crossfade middles."""
    edges = sorted({edge for span in spans for edge in (span.start, span.end)})
    pieces: list[_Piece] = []
    upcoming = iter(spans)
    waiting = next(upcoming, None)
    playing: list[_Span] = []
    # Between two edges the same spans play; only where crossfades are cut changes.
    for left, right in itertools.pairwise(edges):
        while waiting is not None and waiting.start <= left:
            playing.append(waiting)
            waiting = next(upcoming, None)
        playing = [span for span in playing if span.end > left]
        if not playing:
            continue
        innermost = _innermost(playing)
        # None of these contains another, so a later start means a later end. The earlier of
        # two overlapping spans is heard until the middle of their overlap: each span is
        # heard from the middle of its overlap with the previous one to the middle of its
        # overlap with the next one (those middles come in order).
        lower = left
        for current, following in itertools.pairwise(innermost):
            upper = min(right, (following.start + current.end) / 2)
            if upper > lower:
                _add_piece(pieces, current, lower, upper)
                lower = upper
        if lower < right:
            _add_piece(pieces, innermost[-1], lower, right)
    return pieces


def _innermost(playing: list[_Span]) -> list[_Span]:
    """The spans containing no other span (a longer one is split around a shorter one)."""
    by_start = sorted(playing, key=lambda span: (span.start, -span.end, span.track))
    kept: list[_Span] = []
    # Scanning from the latest start: a span contains another iff a span starting at or
    # after it (a different stretch) ends at or before it. Equal stretches contain no other.
    earliest_end_after = math.inf
    index = len(by_start) - 1
    while index >= 0:
        same = [by_start[index]]
        while index > 0 and _stretch(by_start[index - 1]) == _stretch(same[0]):
            index -= 1
            same.append(by_start[index])
        if earliest_end_after > same[0].end:
            kept.extend(same)
        earliest_end_after = min(earliest_end_after, same[0].end)
        index -= 1
    return sorted(kept, key=lambda span: (span.start, span.end, span.track))


def _stretch(span: _Span) -> tuple[float, float]:
    return (span.start, span.end)


def _add_piece(pieces: list[_Piece], span: _Span, start: float, end: float) -> None:
    if pieces and pieces[-1].span is span and pieces[-1].end == start:
        pieces[-1].end = end
    else:
        pieces.append(_Piece(span, start, end))


def _rows(pieces: list[_Piece], duration: float) -> list[Play]:
    """Rule 6: lay the pieces end to end, with unknown rows in the gaps."""
    if duration == 0:
        return []
    laid: list[_Piece] = []
    cursor = 0.0
    for piece in pieces:
        gap = piece.start - cursor
        if gap >= SLIVER_SECONDS:
            laid.append(_Piece(None, cursor, piece.start))
        elif gap > 0:
            # A sliver: the neighbours meet in its middle; the first play starts the set.
            meet = cursor + gap / 2 if laid else 0.0
            if laid:
                laid[-1].end = meet
            piece.start = meet
        _lay(laid, piece)
        cursor = piece.end
    tail = duration - cursor
    if tail >= SLIVER_SECONDS or not laid:
        _lay(laid, _Piece(None, cursor, duration))
    elif tail > 0:
        laid[-1].end = duration
    refs = _track_refs([piece.span for piece in laid if piece.span is not None])
    return [_row(piece, refs) for piece in laid]


def _lay(laid: list[_Piece], piece: _Piece) -> None:
    """Append ``piece``, joined to the previous one when both are the same track or unknown."""
    previous = laid[-1] if laid else None
    if previous is None:
        laid.append(piece)
    elif previous.span is None and piece.span is None:
        previous.end = piece.end
    elif previous.span is not None and piece.span is not None:
        if previous.span.track == piece.span.track:
            plays = previous.span.plays + piece.span.plays
            previous.span = _Span(previous.span.track, previous.start, piece.end, plays)
            previous.end = piece.end
        else:
            laid.append(piece)
    else:
        laid.append(piece)


def _track_refs(spans: list[_Span]) -> dict[int, TrackRef]:
    """One ref per track: its most confident play's, keys it lacks filled in from the rest."""
    plays: dict[int, list[Play]] = {}
    for span in spans:
        plays.setdefault(span.track, []).extend(span.plays)
    refs: dict[int, TrackRef] = {}
    for number, own in plays.items():
        ranked = [play.track for play in sorted(own, key=_strength, reverse=True)]
        ref = ranked[0]
        assert ref is not None
        for other in ranked[1:]:
            assert other is not None
            missing = {
                key: getattr(other, key)
                for key in _FILLED
                if getattr(ref, key) is None and getattr(other, key) is not None
            }
            ref = replace(ref, **missing) if missing else ref
        refs[number] = ref
    return refs


def _strength(play: Play) -> tuple[float, float]:
    """How much a play is to be believed: its confidence, then its length."""
    return (play.confidence if play.confidence is not None else -1.0, play.duration)


def _row(piece: _Piece, refs: dict[int, TrackRef]) -> Play:
    if piece.span is None:
        return Play(piece.start, piece.end, None)
    plays = piece.span.plays
    return Play(
        start=piece.start,
        end=piece.end,
        track=refs[piece.span.track],
        found_by=max(plays, key=_strength).found_by,
        confidence=piece.span.confidence,
        speed=_weighted_mean([(play.speed, play.duration) for play in plays]),
        pitch=_weighted_mean([(play.pitch, play.duration) for play in plays]),
    )


def _weighted_mean(values: list[tuple[float | None, float]]) -> float | None:
    known = [(value, weight) for value, weight in values if value is not None]
    total = sum(weight for _, weight in known)
    if total <= 0:
        return None
    if len({value for value, _ in known}) == 1:
        return known[0][0]  # as given: 0.9 x 4 / 4 would read 0.8999999999999999
    return sum(value * weight for value, weight in known) / total
