"""The running configuration held in process memory.

The hot path reads `current_config()`; a database read happens only when the held
configuration is older than ASSIGNMENT_CONFIG_CHECK_SECONDS, and then it is one
indexed single-row read of the version stamp, plus a reload if the stamp moved.
If the database cannot be reached then, the held configuration goes on serving (as
an SDK goes on with its cached features) and the check is tried again after
`core.outage.RETRY_SECONDS`.
"""

import logging
import threading
import time

from django.conf import settings

from core.outage import DATABASE_UNREACHABLE, checked_at_for_retry
from experiments.assignment import AssignmentConfig
from experiments.selectors import config_version, load_assignment_config

logger = logging.getLogger(__name__)


class _ConfigHolder:
    def __init__(self):
        self._config: AssignmentConfig | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def get(self) -> AssignmentConfig:
        config = self._config
        if config is not None and time.monotonic() - self._checked_at < settings.ASSIGNMENT_CONFIG_CHECK_SECONDS:
            return config
        with self._lock:
            if self._config is None or time.monotonic() - self._checked_at >= settings.ASSIGNMENT_CONFIG_CHECK_SECONDS:
                try:
                    if self._config is None or config_version() != self._config.version:
                        self._config = load_assignment_config()
                except DATABASE_UNREACHABLE:
                    if self._config is None:
                        raise  # nothing to serve: the API answers 503
                    logger.warning("database unreachable: serving the held assignment configuration "
                                   "(version %s)", self._config.version)
                    self._checked_at = checked_at_for_retry(settings.ASSIGNMENT_CONFIG_CHECK_SECONDS)
                else:
                    self._checked_at = time.monotonic()
            return self._config

    def invalidate(self) -> None:
        with self._lock:
            self._config = None


holder = _ConfigHolder()
current_config = holder.get
