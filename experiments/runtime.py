"""The running configuration held in process memory.

The hot path reads `current_config()`; a database read happens only when the held
configuration is older than ASSIGNMENT_CONFIG_CHECK_SECONDS, and then it is one
indexed single-row read of the version stamp, plus a reload if the stamp moved.
"""

import threading
import time

from django.conf import settings

from experiments.assignment import AssignmentConfig
from experiments.selectors import config_version, load_assignment_config


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
                if self._config is None or config_version() != self._config.version:
                    self._config = load_assignment_config()
                self._checked_at = time.monotonic()
            return self._config

    def invalidate(self) -> None:
        with self._lock:
            self._config = None


holder = _ConfigHolder()
current_config = holder.get
