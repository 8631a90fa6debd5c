"""Uploads in progress, per user: the places they hold in the active-submissions quota.

An upload only becomes a submission once its body has arrived, which may take minutes and
600 MB of disk. Until then it holds a slot here, taken before the first byte is read and
released when the request ends, so that parallel uploads cannot each slip under the quota
that committed submissions alone would leave.

Production (several web processes, maybe several machines) keeps the slots in Redis: one
sorted set per user, members the slot ids, scores the time each slot expires. The embedded
profile is one process and keeps them in a dictionary. Either way a slot lasts
``SLOT_SECONDS`` unless the upload refreshes it, so the slot of a process killed mid-upload
frees itself instead of costing its user a place for good.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import Protocol

from flask import Flask, current_app
from redis import Redis

from set2tracks.extensions import redis_client

SLOT_SECONDS = 300
# An upload refreshes its slot at most this often: a Redis round trip per 64 KB chunk
# would cost more than the upload's own writes.
REFRESH_SECONDS = 30
KEY_PREFIX = "s2t:uploading:"

# Atomic on Redis: drop expired slots, count, and add one only while under the limit.
TAKE_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class UploadSlots(Protocol):
    def take(self, user_id: int, limit: int) -> str | None:
        """Take a slot for ``user_id`` unless ``limit`` live slots are held; return its id."""

    def refresh(self, user_id: int, slot: str) -> None:
        """Push back the expiry of a slot whose upload is still arriving."""

    def release(self, user_id: int, slot: str) -> None:
        """Give a slot back (a slot already expired is fine)."""

    def count(self, user_id: int) -> int:
        """Return how many live slots ``user_id`` holds."""


class LocalUploadSlots:
    """Slots of one process, for the embedded profile."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._expiries: dict[int, dict[str, float]] = {}

    def _live(self, user_id: int) -> dict[str, float]:
        now = self._clock()
        slots = {
            slot: expiry for slot, expiry in self._expiries.get(user_id, {}).items() if expiry > now
        }
        if slots:
            self._expiries[user_id] = slots
        else:
            self._expiries.pop(user_id, None)
        return slots

    def take(self, user_id: int, limit: int) -> str | None:
        with self._lock:
            slots = self._live(user_id)
            if len(slots) >= limit:
                return None
            slot = secrets.token_hex(8)
            slots[slot] = self._clock() + SLOT_SECONDS
            self._expiries[user_id] = slots
            return slot

    def refresh(self, user_id: int, slot: str) -> None:
        with self._lock:
            slots = self._expiries.get(user_id, {})
            if slot in slots and slots[slot] > self._clock():
                slots[slot] = self._clock() + SLOT_SECONDS

    def release(self, user_id: int, slot: str) -> None:
        with self._lock:
            self._expiries.get(user_id, {}).pop(slot, None)
            self._live(user_id)

    def count(self, user_id: int) -> int:
        with self._lock:
            return len(self._live(user_id))


class RedisUploadSlots:
    """Slots shared by every web process, in Redis."""

    def __init__(self, client: Redis, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self._clock = clock
        self._take = client.register_script(TAKE_SCRIPT)

    def take(self, user_id: int, limit: int) -> str | None:
        slot = secrets.token_hex(8)
        now = self._clock()
        taken = self._take(
            keys=[KEY_PREFIX + str(user_id)],
            args=[now, limit, now + SLOT_SECONDS, slot, SLOT_SECONDS * 2],
        )
        return slot if taken else None

    def refresh(self, user_id: int, slot: str) -> None:
        key = KEY_PREFIX + str(user_id)
        now = self._clock()
        with self.client.pipeline() as pipe:  # MULTI: one step for other processes
            pipe.zremrangebyscore(key, "-inf", now)
            # XX: an expired slot, dropped just above, is not brought back.
            pipe.zadd(key, {slot: now + SLOT_SECONDS}, xx=True)
            pipe.expire(key, SLOT_SECONDS * 2)
            pipe.execute()

    def release(self, user_id: int, slot: str) -> None:
        self.client.zrem(KEY_PREFIX + str(user_id), slot)

    def count(self, user_id: int) -> int:
        return int(self.client.zcount(KEY_PREFIX + str(user_id), self._clock(), "+inf"))


class SlotKeeper:
    """Refreshes one held slot while its upload arrives, at most every ``REFRESH_SECONDS``."""

    def __init__(self, slots: UploadSlots, user_id: int, slot: str) -> None:
        self.slots = slots
        self.user_id = user_id
        self.slot = slot
        self.refreshed = time.monotonic()

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self.refreshed >= REFRESH_SECONDS:
            self.slots.refresh(self.user_id, self.slot)
            self.refreshed = now


def init_upload_slots(app: Flask) -> None:
    """Keep uploads in progress in Redis when the app has one, else in this process."""
    slots: UploadSlots
    if app.config.get("REDIS_URL"):
        slots = RedisUploadSlots(redis_client(app))
    else:
        slots = LocalUploadSlots()
    app.extensions["s2t_upload_slots"] = slots


def upload_slots() -> UploadSlots:
    """Return the current app's store of uploads in progress."""
    slots: UploadSlots = current_app.extensions["s2t_upload_slots"]
    return slots
