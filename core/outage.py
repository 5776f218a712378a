"""How serving processes treat a database they cannot reach: they go on with what they
hold (configuration, models, buffered records) and ask it again only every
RETRY_SECONDS, because a hung database costs each asking request its connect timeout.
No Django settings here; the holders pass their own check intervals."""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)
T = TypeVar("T")

DATABASE_UNREACHABLE = (OperationalError, InterfaceError)
RETRY_SECONDS = 5.0


def retry_at() -> float:
    """The monotonic time before which the database is not asked again."""
    return time.monotonic() + RETRY_SECONDS


def checked_at_for_retry(check_interval: float) -> float:
    """The `checked_at` stamp that makes a holder, which checks once `check_interval`
    seconds have passed since it, ask again RETRY_SECONDS from now."""
    return retry_at() - check_interval


class OutageBackoff:
    """A read a request can do without: it is skipped (None) for RETRY_SECONDS after the
    database (or the service whose `errors` are given, e.g. Redis) could not be reached,
    instead of costing every request a connect timeout."""

    def __init__(self, what: str, errors: tuple[type[BaseException], ...] = DATABASE_UNREACHABLE,
                 service: str = "database"):
        self.what = what
        self.errors = errors
        self.service = service
        self._skip_until = 0.0

    def read(self, query: Callable[[], T]) -> T | None:
        if time.monotonic() < self._skip_until:
            return None
        try:
            return query()
        except self.errors as exc:
            logger.warning("%s unreachable: going on without %s: %s", self.service, self.what, exc)
            self._skip_until = retry_at()
            return None

    def reset(self) -> None:
        """Ask again at the next read (tests; a process that knows the outage ended)."""
        self._skip_until = 0.0
