"""A user's recent engagements, kept outside the built models so that the closeup
uses what someone clicked a minute ago (docs/recommenders.md, "Live history").

The ingestion worker appends each stored group of batches' clicks and saves (the
engagements the built history is made of, with the same weights: a click 1, a save 2)
after the transaction commits; the closeup reads a user's list at request time. Two
backends behind one interface:

- Redis (LIVE_HISTORY_REDIS_URL, by default REDIS_CACHE_URL): a list per user, newest
  first, capped at LIVE_HISTORY_LENGTH by LTRIM and expiring LIVE_HISTORY_TTL_SECONDS
  after its last write; one script call per stored group, so the write costs the worker
  one round trip however many users the group touches. Shared by every process.
- The events table, without Redis (`make run`): the worker writes nothing more, and the
  closeup reads the user's newest clicks and saves within the TTL from the table every
  process shares, by its (user_id, occurred_at) index. `make run`'s worker and web
  server are separate processes, so a store in either one's memory would not do.
- Memory (LIVE_HISTORY_IN_MEMORY, the tests): the same list per user in this process,
  with the same cap and TTL, and at most MEMORY_MAX_USERS users (least recently written
  dropped first); only a process that both stores events and serves closeups sees it.

The history is best effort: a write that fails is logged and counted, never a reason
to fail or retry a batch that is already committed, and an unreadable store leaves the
closeup its built history. Entries are pin ids, not catalog indices: the catalog a
serving process holds may change between the write and the read."""

import contextlib
import logging
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import timedelta

import redis
from django.conf import settings
from django.utils import timezone

from core.outage import DATABASE_UNREACHABLE
from events.models import Event

logger = logging.getLogger(__name__)

# The engagements the built history counts (recommenders/selectors.py, logged_engagements), by weight.
WEIGHTS = {"click": 1.0, "save": 2.0}
KEY_PREFIX = "pinpoint:live-history:"
# Without Redis the store lives in a process's memory: bounded, so that a stream of
# new users cannot grow a worker without limit (about 2 KB a user at 20 entries, so
# some 20 MB at most), least recently written dropped first.
MEMORY_MAX_USERS = 10_000
UNREACHABLE = (redis.RedisError, OSError, *DATABASE_UNREACHABLE)
# One command per stored group, whatever the number of users: as a pipeline of
# LPUSH/LTRIM/EXPIRE per user, redis-py's packing and reply parsing (three commands per
# user) cost the worker a quarter of its ingestion rate (bench/live_history.py ingest).
# ARGV: the cap, the TTL, then per key its entry count and entries, oldest first, so
# that LPUSH leaves the newest at the head.
APPEND = """
local cap, ttl, at = tonumber(ARGV[1]), tonumber(ARGV[2]), 3
for _, key in ipairs(KEYS) do
  local n = tonumber(ARGV[at])
  for i = at + 1, at + n do
    redis.call('LPUSH', key, ARGV[i])
  end
  at = at + n + 1
  redis.call('LTRIM', key, 0, cap - 1)
  redis.call('EXPIRE', key, ttl)
end
return #KEYS
"""


@dataclass
class Counters:
    """This process's writes and failures. A write that fails is counted and logged with
    the count so far, not retried: the batch is stored, only the history lags."""

    batches_written: int = 0
    engagements_written: int = 0
    write_failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def as_dict(self) -> dict:
        return {"batches_written": self.batches_written, "engagements_written": self.engagements_written,
                "write_failures": self.write_failures}


counters = Counters()


def engagements_by_user(rows: list[list]) -> dict[str, list[tuple[int, float]]]:
    """Event rows (events/validation.py's column order) to each user's (pin id, weight)
    engagements, oldest first."""
    engaged = sorted((r for r in rows if r[3] in WEIGHTS), key=lambda r: r[1])
    by_user: dict[str, list[tuple[int, float]]] = {}
    for r in engaged:
        by_user.setdefault(r[2], []).append((int(r[4]), WEIGHTS[r[3]]))
    return by_user


class RedisHistory:
    def __init__(self, url: str, length: int, ttl_seconds: int, timeout_seconds: float):
        self.length, self.ttl = length, ttl_seconds
        # No retries: a closeup must give up on a dead Redis after one short timeout.
        self.client = redis.Redis.from_url(url, socket_connect_timeout=timeout_seconds,
                                           socket_timeout=timeout_seconds, retry=None)
        self._append = self.client.register_script(APPEND)

    def append(self, by_user: dict[str, list[tuple[int, float]]]) -> None:
        keys, args = [], [self.length, self.ttl]
        for user, engaged in by_user.items():
            newest = engaged[-self.length:]  # older ones would be trimmed at once
            keys.append(KEY_PREFIX + user)
            args += [len(newest), *(f"{pin}:{weight:g}" for pin, weight in newest)]
        self._append(keys=keys, args=args)

    def recent(self, user_id: str) -> list[tuple[int, float]]:
        entries = self.client.lrange(KEY_PREFIX + user_id, 0, self.length - 1)
        recent = []
        for entry in entries:
            pin, _, weight = entry.decode(errors="replace").partition(":")
            # A key written by something else must cost the closeup that entry, not the page.
            with contextlib.suppress(ValueError):
                recent.append((int(pin), float(weight)))
        return recent

    def clear(self) -> None:
        keys = list(self.client.scan_iter(match=KEY_PREFIX + "*", count=1000))
        if keys:
            self.client.delete(*keys)


class MemoryHistory:
    def __init__(self, length: int, ttl_seconds: int, max_users: int = MEMORY_MAX_USERS,
                 clock=time.monotonic):
        self.length, self.ttl, self.max_users, self.clock = length, ttl_seconds, max_users, clock
        self._users: OrderedDict[str, tuple[float, deque]] = OrderedDict()  # user -> (expires at, newest first)
        self._lock = threading.Lock()

    def append(self, by_user: dict[str, list[tuple[int, float]]]) -> None:
        now = self.clock()
        with self._lock:
            for user, engaged in by_user.items():
                held = self._users.pop(user, None)
                entries = held[1] if held and held[0] > now else deque(maxlen=self.length)
                entries.extendleft(engaged)
                self._users[user] = (now + self.ttl, entries)
            while len(self._users) > self.max_users:
                self._users.popitem(last=False)

    def recent(self, user_id: str) -> list[tuple[int, float]]:
        with self._lock:
            held = self._users.get(user_id)
            if held is None:
                return []
            if held[0] <= self.clock():
                del self._users[user_id]
                return []
            return list(held[1])

    def clear(self) -> None:
        with self._lock:
            self._users.clear()


class DatabaseHistory:
    """The stored events are the history: nothing to append, one indexed read."""

    def __init__(self, length: int, ttl_seconds: int):
        self.length, self.ttl = length, ttl_seconds

    def append(self, by_user: dict[str, list[tuple[int, float]]]) -> None:
        pass

    def recent(self, user_id: str) -> list[tuple[int, float]]:
        since = timezone.now() - timedelta(seconds=self.ttl)
        rows = (Event.objects.filter(user_id=user_id, occurred_at__gte=since, type__in=list(WEIGHTS))
                .order_by("-occurred_at").values_list("pin_id", "type")[: self.length])
        return [(int(pin), WEIGHTS[kind]) for pin, kind in rows]

    def clear(self) -> None:
        pass


_store: RedisHistory | MemoryHistory | DatabaseHistory | None = None
_store_config: tuple | None = None
_store_lock = threading.Lock()


def store() -> RedisHistory | MemoryHistory | DatabaseHistory:
    """This process's store, made again when its settings changed (tests change them)."""
    global _store, _store_config
    config = (settings.LIVE_HISTORY_REDIS_URL, settings.LIVE_HISTORY_LENGTH, settings.LIVE_HISTORY_TTL_SECONDS,
              settings.LIVE_HISTORY_TIMEOUT_MS, settings.LIVE_HISTORY_IN_MEMORY)
    if _store is None or _store_config != config:
        with _store_lock:
            if _store is None or _store_config != config:
                url, length, ttl, timeout_ms, in_memory = config
                _store = (RedisHistory(url, length, ttl, timeout_ms / 1000) if url
                          else MemoryHistory(length, ttl) if in_memory else DatabaseHistory(length, ttl))
                _store_config = config
    return _store


def reset() -> None:
    """Forget this process's store and counters (tests): the next use makes it again."""
    global _store, _store_config
    with _store_lock:
        _store, _store_config = None, None
    counters.add(**{name: -value for name, value in counters.as_dict().items()})


def record(rows: list[list]) -> None:
    """Append the stored rows' engagements. Never raises: the batch is already stored."""
    if not settings.LIVE_HISTORY:
        return
    try:
        by_user = engagements_by_user(rows)
        if not by_user:
            return
        store().append(by_user)
        counters.add(batches_written=1, engagements_written=sum(len(e) for e in by_user.values()))
    except Exception:  # Redis down, a malformed row: the history lags, the events are safe
        counters.add(write_failures=1)
        logger.warning("live history not written for %d stored events (%d failures in this process)",
                       len(rows), counters.write_failures, exc_info=True)


def recent(user_id: str) -> list[tuple[int, float]]:
    """The user's engagements (pin id, weight), newest first; raises when the store
    cannot be reached (the closeup's OutageBackoff decides what then)."""
    if not settings.LIVE_HISTORY:
        return []
    return store().recent(user_id)
