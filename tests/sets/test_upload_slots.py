"""Places held by uploads in progress: in the process (embedded) or in Redis (production)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis

from set2tracks.sets.upload_slots import (
    SLOT_SECONDS,
    LocalUploadSlots,
    RedisUploadSlots,
    UploadSlots,
)

USER = 7


class Clock:
    """A clock the test moves by hand: places expire without anyone waiting."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["process", pytest.param("redis", marks=pytest.mark.redis)])
def slots(request: pytest.FixtureRequest, clock: Clock) -> Iterator[UploadSlots]:
    if request.param == "process":
        yield LocalUploadSlots(clock)
        return
    client = Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisUploadSlots(client, clock)
    client.close()


def test_a_user_holds_at_most_the_places_left(slots: UploadSlots) -> None:
    first, second = slots.take(USER, limit=2), slots.take(USER, limit=2)

    assert first is not None
    assert second is not None
    assert first != second
    assert slots.take(USER, limit=2) is None
    assert slots.take(USER + 1, limit=1) is not None  # another user's places are theirs
    slots.release(USER, first)
    assert slots.count(USER) == 1
    assert slots.take(USER, limit=2) is not None


def test_a_place_nobody_refreshes_expires(slots: UploadSlots, clock: Clock) -> None:
    """The place of a process killed mid-upload comes back without anyone releasing it."""
    abandoned = slots.take(USER, limit=2)
    arriving = slots.take(USER, limit=2)
    assert abandoned is not None
    assert arriving is not None

    clock.now += SLOT_SECONDS * 0.75
    slots.refresh(USER, arriving)  # its upload is still coming in
    clock.now += SLOT_SECONDS * 0.5
    slots.refresh(USER, abandoned)  # too late: an expired place is not brought back

    assert slots.count(USER) == 1
    assert slots.take(USER, limit=2) is not None
    assert slots.take(USER, limit=2) is None
