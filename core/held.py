"""What a serving process holds in memory and refreshes: the assignment configuration
(experiments/runtime.py) and the active recommender models (recommenders/serving.py).

The hot path reads the held value with no lock and no query. Once `check_seconds`
have passed since the last check, one caller (double-checked under a lock) reads a
cheap version stamp and reloads only if the stamp moved. If the database cannot be
reached then, the held value goes on serving, as an SDK goes on with its cached
features, and the check is tried again after `core.outage.RETRY_SECONDS`; with
nothing held yet the error goes up (the API answers 503)."""

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from core.outage import DATABASE_UNREACHABLE, checked_at_for_retry

logger = logging.getLogger(__name__)

T = TypeVar("T")


class HeldValue(Generic[T]):
    def __init__(self, what: str, *, check_seconds: Callable[[], float], version: Callable[[], object],
                 load: Callable[[], T], version_of: Callable[[T], object]):
        self.what = what
        self._check_seconds, self._version, self._load, self._version_of = check_seconds, version, load, version_of
        self._value: T | None = None
        self._loaded = False
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def _due(self) -> bool:
        return not self._loaded or time.monotonic() - self._checked_at >= self._check_seconds()

    def get(self) -> T:
        if not self._due():
            return self._value
        with self._lock:
            if self._due():
                self._refresh()
            return self._value

    def _refresh(self) -> None:
        try:
            held = self._version_of(self._value) if self._loaded and self._value is not None else None
            if not self._loaded or self._version() != held:
                self._value, self._loaded = self._load(), True
        except DATABASE_UNREACHABLE:
            if self._value is None:
                raise
            logger.warning("database unreachable: serving the held %s", self.what)
            self._checked_at = checked_at_for_retry(self._check_seconds())
        else:
            self._checked_at = time.monotonic()

    def peek(self) -> T | None:
        """What is held now, without checking or loading (for reports, not for serving)."""
        return self._value

    def invalidate(self) -> None:
        with self._lock:
            self._value, self._loaded, self._checked_at = None, False, 0.0
