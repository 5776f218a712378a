"""Exposures leave the request path through an in-process buffer, one Celery task per
batch: a request appends to a list and returns; a flush sends up to
EXPOSURE_BATCH_SIZE exposures as one task, when the batch is full or every
EXPOSURE_FLUSH_SECONDS from a background thread, and when the process exits.

A process also remembers which (experiment, user) pairs it has already sent, so a
user who asks for assignments a hundred times costs one exposure, not a hundred.
The write is idempotent on (experiment, user), so a pair sent by two processes, or a
task delivered twice, is still one row.

Limit: a process killed with SIGKILL loses what it had not flushed (at most
EXPOSURE_FLUSH_SECONDS of first exposures); a clean shutdown flushes.
"""

import atexit
import logging
import os
import threading
from datetime import UTC, datetime

from django.conf import settings

logger = logging.getLogger(__name__)

_MAX_SEEN = 1_000_000
_MAX_PENDING = 200_000


class ExposureBuffer:
    def __init__(self):
        self._lock = threading.Lock()
        self._pending: list[dict] = []
        self._seen: set[tuple[int, str]] = set()
        self._thread: threading.Thread | None = None
        self._pid = None
        self._stop = threading.Event()

    def add(self, experiment_id: int, variant_id: int, user_id: str, attributes: dict, forced: bool) -> None:
        key = (experiment_id, user_id)
        if key in self._seen:
            return
        row = {
            "experiment_id": experiment_id, "variant_id": variant_id, "user_id": user_id,
            "at": datetime.now(UTC).isoformat(), "attributes": attributes, "forced": forced,
        }
        with self._lock:
            if len(self._seen) >= _MAX_SEEN:
                self._seen.clear()
            self._seen.add(key)
            self._pending.append(row)
            full = len(self._pending) >= settings.EXPOSURE_BATCH_SIZE
        self._ensure_flusher()
        if full:
            self.flush()

    def flush(self) -> int:
        from experiments.tasks import record_exposures

        with self._lock:
            batch, self._pending = self._pending, []
        sent = 0
        for i in range(0, len(batch), settings.EXPOSURE_BATCH_SIZE):
            chunk = batch[i : i + settings.EXPOSURE_BATCH_SIZE]
            try:
                record_exposures.apply_async(args=[chunk])
                sent += len(chunk)
            except Exception:
                # Broker down: keep the rest for the next flush rather than lose them.
                logger.exception("could not enqueue %d exposures; will retry", len(batch) - i)
                with self._lock:
                    self._pending = (batch[i:] + self._pending)[-_MAX_PENDING:]
                break
        return sent

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
            self._seen.clear()

    def pending(self) -> int:
        return len(self._pending)

    def _ensure_flusher(self) -> None:
        # One thread per process, started after fork (gunicorn forks after import).
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="exposure-flusher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(settings.EXPOSURE_FLUSH_SECONDS):
            if self._pending:
                try:
                    self.flush()
                except Exception:
                    logger.exception("exposure flush failed")


buffer = ExposureBuffer()
atexit.register(lambda: buffer.pending() and buffer.flush())
