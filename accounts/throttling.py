"""Rate limits: per API key on the client endpoints, per user and address on login.

Fixed windows counted with the cache's atomic increment, batched per process (see
`hit`). DRF's own SimpleRateThrottle keeps a list of every request's time in the
cache, which at thousands a minute is a large value read and written per request.
The counters live in the default cache: Redis when REDIS_CACHE_URL is set, so every
process shares them; per-process memory otherwise (make run).
If the cache is down the request is let through and the failure logged: a rate
limit must not take the API down with it.
"""

import logging
import math
import threading
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from accounts.authentication import ApiClient

logger = logging.getLogger(__name__)


def parse_rate(rate: str) -> tuple[int, int]:
    """'1000/minute' -> (1000, 60)."""
    count, _, period = rate.partition("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period.strip()[0].lower()]
    return int(count), seconds


_local: dict[str, list] = {}  # counter name -> [unsent count, last known total, last sync time]
_lock = threading.Lock()
SYNC_SECONDS = 0.25


def hit(key: str, limit: int, window: int) -> float | None:
    """Count one event under `key` in the current window; the seconds to wait when the
    limit is passed, else None.

    Each process counts in memory and adds its count to the shared counter every
    limit/1000 events (every event for small limits) or every 0.25 s, so a client at
    thousands of requests a second costs the cache a few increments a second, not one
    per request (that round trip took the assignment endpoint from 80% to 47% of a
    trivial endpoint's throughput). The limit may be overshot by that batch per process:
    120 requests per process at the default 120,000 a minute."""
    now = time.time()
    slot = int(now // window)
    name = f"rl:{key}:{slot}"
    batch = max(1, limit // 1000)
    with _lock:
        entry = _local.get(name)
        if entry is None:
            for stale in [k for k in _local if k.startswith(f"rl:{key}:") and k != name]:
                del _local[stale]
            entry = _local[name] = [0, 0, now]
        entry[0] += 1
        if entry[0] < batch and now - entry[2] < SYNC_SECONDS:
            total = entry[1] + entry[0]
            return max(1.0, (slot + 1) * window - now) if total > limit else None
        unsent, entry[0], entry[2] = entry[0], 0, now
    try:
        try:
            total = cache.incr(name, unsent)
        except ValueError:  # the window's first count
            total = unsent if cache.add(name, unsent, timeout=window + 1) else cache.incr(name, unsent)
    except Exception:  # noqa: BLE001 - the cache is down: let it through, say so
        logger.warning("rate limit counter unavailable; request allowed", exc_info=True)
        return None
    with _lock:
        entry[1] = total
    if total > limit:
        return max(1.0, (slot + 1) * window - now)
    return None


def forget_local_counts() -> None:
    with _lock:
        _local.clear()


def peek(key: str, window: int) -> int:
    try:
        return int(cache.get(f"rl:{key}:{int(time.time() // window)}") or 0)
    except Exception:  # noqa: BLE001
        return 0


def clear(key: str, window: int) -> None:
    with _lock:
        _local.pop(f"rl:{key}:{int(time.time() // window)}", None)
    try:
        cache.delete(f"rl:{key}:{int(time.time() // window)}")
    except Exception:  # noqa: BLE001
        pass


class ApiKeyRateThrottle(BaseThrottle):
    """CLIENT_RATE_LIMIT requests per window per API key; 429 with Retry-After past it."""

    def allow_request(self, request, view):
        if not isinstance(request.auth, ApiClient):
            return True
        limit, window = parse_rate(settings.CLIENT_RATE_LIMIT)
        self._wait = hit(f"key:{request.auth.key_id}", limit, window)
        return self._wait is None

    def wait(self):
        return math.ceil(self._wait) if self._wait else None
