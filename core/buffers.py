"""Buffers that take records off the request path: a request appends and returns; a
flush sends up to `batch_size` records at a time from a background thread, woken when a
batch is full and every `flush_seconds` otherwise, and when the process exits. A
request sends a batch itself only when the thread has fallen ten batches behind. Used for
exposures (experiments/exposures.py) and served impressions (serving/impressions.py).

While the database is down a buffer keeps its records (up to _MAX_PENDING) and sends
them once it is back.

One flush at a time per process: a process that exits waits (up to _EXIT_WAIT_SECONDS)
for the flusher thread to finish the batch it is sending, then sends what is left.
Without that wait the exit found an empty buffer while the thread still held the last
batch, and the thread died with the interpreter: the end-to-end test lost 20
exposures that way when the web server stopped right after the load. Requests never
wait for a flush in flight; their records go with the next one.

Limit: a process killed with SIGKILL loses what it had not flushed (at most
`flush_seconds` of records); a clean shutdown flushes.
"""

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable

from django.db import DataError, IntegrityError, close_old_connections

from core.outage import retry_at

logger = logging.getLogger(__name__)

_MAX_SEEN = 1_000_000
# A request sends a batch itself only when this many batches are waiting: a full batch
# wakes the flusher thread instead, so requests do not pay for the write (it cost the
# closeup's p99: every 40th request stored 1,000 impressions in its own time).
_INLINE_AFTER_BATCHES = 10
_MAX_PENDING = 200_000
_EXIT_WAIT_SECONDS = 10.0
# The database answered, and refused the data itself: not an outage to wait out.
REFUSED_ROWS = (DataError, IntegrityError)


class BatchBuffer:
    def __init__(self, name: str, send: Callable[[list], None], batch_size: Callable[[], int],
                 flush_seconds: Callable[[], float]):
        self.name = name
        self._send = send
        self._batch_size = batch_size
        self._flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._sending = threading.Lock()
        self._pending: list = []
        self._seen: set = set()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._pid = None
        # After a failed send, requests stop flushing inline for a while and leave the
        # retries to the flusher thread: a hung database must not hold up requests.
        self._inline_after = 0.0
        atexit.register(self.flush, timeout=_EXIT_WAIT_SECONDS)
        # A lock held by another thread at fork time would stay held in the child forever.
        os.register_at_fork(after_in_child=self._reset_locks)

    def _reset_locks(self) -> None:
        self._lock = threading.Lock()
        self._sending = threading.Lock()
        self._wake = threading.Event()

    def add(self, record, key=None) -> None:
        """Queue a record; with a key, a record whose key this process already queued is dropped."""
        if key is not None and key in self._seen:
            return
        with self._lock:
            if key is not None:
                if len(self._seen) >= _MAX_SEEN:
                    self._seen.clear()
                self._seen.add(key)
            self._pending.append(record)
            waiting = len(self._pending)
        self._ensure_flusher()
        size = self._batch_size()
        if waiting >= size:
            self._wake.set()
        # Back-pressure: the flusher is falling behind (or the database is slow), so the
        # requests that fill the buffer help, as long as the database answers at all.
        if waiting >= size * _INLINE_AFTER_BATCHES and time.monotonic() >= self._inline_after:
            self.flush(wait=False)

    def flush(self, wait: bool = True, timeout: float = -1) -> int:
        """Send what is pending; returns how many records were sent. With wait=False it
        returns 0 at once if another thread is sending (that one, or the next flush,
        takes these records)."""
        acquired = self._sending.acquire(timeout=timeout) if wait else self._sending.acquire(blocking=False)
        if not acquired:
            return 0
        try:
            return self._flush_pending()
        finally:
            self._sending.release()

    def _flush_pending(self) -> int:
        with self._lock:
            batch, self._pending = self._pending, []
        size, sent = self._batch_size(), 0
        for i in range(0, len(batch), size):
            chunk = batch[i : i + size]
            try:
                try:
                    self._send(chunk)
                    sent += len(chunk)
                except REFUSED_ROWS:
                    # The database is up and refuses something in the chunk: retrying it
                    # would block every later record behind it. Send the rows one by one and
                    # drop those it refuses (an outage meanwhile keeps the chunk, below;
                    # every send is idempotent, so rows sent twice are written once).
                    sent += self._send_one_by_one(chunk)
            except Exception:
                # Broker or database down: keep the rest for the next flush rather than lose them.
                logger.exception("could not send %d %s; will retry", len(batch) - i, self.name)
                self._inline_after = retry_at()
                with self._lock:
                    kept = batch[i:] + self._pending
                    self._pending = kept[-_MAX_PENDING:]
                    dropped = len(kept) - len(self._pending)
                if dropped:
                    logger.error("dropped the %d oldest %s: the buffer is full", dropped, self.name)
                break
        return sent

    def _send_one_by_one(self, chunk: list) -> int:
        sent = 0
        for record in chunk:
            try:
                self._send([record])
                sent += 1
            except REFUSED_ROWS as exc:
                logger.error("dropped one of the %s: the database refuses it (%s): %r", self.name, exc, record)
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
            self._thread = threading.Thread(target=self._run, name=f"{self.name}-flusher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._flush_seconds())
            self._wake.clear()
            if self._pending:
                try:
                    # This thread's connection outlives requests: after a database
                    # restart it is broken, and only closing it lets the next flush reconnect.
                    close_old_connections()
                    self.flush()
                except Exception:
                    logger.exception("%s flush failed", self.name)
