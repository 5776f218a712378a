"""How serving processes treat a database they cannot reach: they go on with what they
hold (configuration, models, buffered records) and ask it again only every
RETRY_SECONDS, because a hung database costs each asking request its connect timeout.
No Django settings here; the holders pass their own check intervals."""

import time

from django.db import InterfaceError, OperationalError

DATABASE_UNREACHABLE = (OperationalError, InterfaceError)
RETRY_SECONDS = 5.0


def retry_at() -> float:
    """The monotonic time before which the database is not asked again."""
    return time.monotonic() + RETRY_SECONDS


def checked_at_for_retry(check_interval: float) -> float:
    """The `checked_at` stamp that makes a holder, which checks once `check_interval`
    seconds have passed since it, ask again RETRY_SECONDS from now."""
    return retry_at() - check_interval
