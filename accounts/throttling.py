"""Rate limits: per API key on the client endpoints, per user and address on login.

Fixed one-minute windows counted with the cache's atomic increment: one round trip
to Redis per request (DRF's own SimpleRateThrottle keeps a list of every request's
time in the cache, which at thousands a minute is a large value read and written per
request). The counters live in the default cache: Redis when REDIS_CACHE_URL is set,
so every process shares them; per-process memory otherwise (make run).
If the cache is down the request is let through and the failure logged: a rate
limit must not take the API down with it.
"""

import logging
import math
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


def hit(key: str, limit: int, window: int) -> float | None:
    """Count one event under `key` in the current window; the seconds to wait when the
    limit is passed, else None."""
    now = time.time()
    slot = int(now // window)
    name = f"rl:{key}:{slot}"
    try:
        try:
            n = cache.incr(name)
        except ValueError:  # the window's first event
            if cache.add(name, 1, timeout=window + 1):
                n = 1
            else:
                n = cache.incr(name)
    except Exception:  # noqa: BLE001 - the cache is down: let it through, say so
        logger.warning("rate limit counter unavailable; request allowed", exc_info=True)
        return None
    if n > limit:
        return max(1.0, (slot + 1) * window - now)
    return None


def peek(key: str, window: int) -> int:
    try:
        return int(cache.get(f"rl:{key}:{int(time.time() // window)}") or 0)
    except Exception:  # noqa: BLE001
        return 0


def clear(key: str, window: int) -> None:
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
