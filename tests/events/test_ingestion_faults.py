"""Faults, with real processes on the real broker and database: pool processes
killed mid-batch with 100,000 events queued. Every accepted event is stored exactly
once. The whole stack under a mixed load, with a worker group killed, the web server,
Redis and PostgreSQL restarted, is in tests/core/test_faults_under_load.py."""

import os
import signal
import time

import pytest
from django.conf import settings
from django.db import connection

from core import schedules
from events import ingestion
from events.models import EventBatch
from events.selectors import ingestion_stats
from tests import processes
from tests.events.events_helpers import make_batch

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL.startswith("redis")
        or settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
        reason="fault tests run against the real Redis and PostgreSQL (.ci/run); the filesystem broker of make run "
        "does not redeliver after a killed pool process",
    ),
]


def _empty_event_tables():
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM experiments_event")
    EventBatch.objects.all().delete()


@pytest.fixture(autouse=True)
def _empty_events_table():
    # The events table is created by raw SQL (unmanaged), so the flush between
    # transactional tests does not empty it; and a server of an earlier test may have
    # flushed its served impressions as it stopped. Start from nothing, leave nothing.
    _empty_event_tables()
    yield
    _empty_event_tables()


def stored_counts() -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT event_id) FROM experiments_event")
        return cursor.fetchone()


def wait_all_stored(accepted: int, timeout: float) -> float:
    started = time.monotonic()
    processes.wait_until(lambda: stored_counts()[0] >= accepted and ingestion_stats()["pending_batches"] == 0,
                         timeout=timeout, interval=0.5, what=f"{accepted} events to be stored")
    return time.monotonic() - started


def assert_exactly_once(accepted: int):
    total, distinct = stored_counts()
    assert total == distinct == accepted
    stats = ingestion_stats()
    assert stats["stored"] == accepted and stats["pending_batches"] == 0 and stats["dead_lettered"] == 0


def post_batches(client, n_batches: int, size: int, start: int = 0) -> int:
    accepted = 0
    for b in range(n_batches):
        response = client.post("/api/v1/events", {"events": make_batch(size, start + b * size)}, format="json")
        assert response.status_code == 202, response.content
        accepted += response.json()["accepted"]
    return accepted


def test_worker_children_killed_mid_stream_lose_nothing(key_client, tmp_path):
    schedules.ensure()
    accepted = post_batches(key_client, 100, 1000)  # all in the broker before a worker takes any
    with processes.celery_beat(tmp_path / "beat.log"), \
            processes.celery_worker(concurrency=2, log_path=tmp_path / "w1.log") as worker:
        processes.wait_until(lambda: stored_counts()[0] > 5_000, timeout=60, interval=0.05,
                             what="the worker to start storing")
        killed = processes.process_family(worker.pid)[1:]
        for pid in killed:  # the pool processes, mid-batch: their tasks are requeued
            os.kill(pid, signal.SIGKILL)
        assert killed
        assert stored_counts()[0] < accepted, "everything was stored before the kill; the test proves nothing"
        wait_all_stored(accepted, timeout=120)
    assert accepted == 100_000
    assert_exactly_once(accepted)


def test_a_poisoned_event_in_a_real_worker_is_dead_lettered_and_the_batch_stored(tmp_path):
    """An event that makes the insert raise inside the worker (what validation would
    never let through) goes to the dead letters with its reason; its batch's good
    events are stored, and the batches behind it are not held up."""
    import orjson

    from events.models import DeadLetter

    rows = ingestion.validate_events(make_batch(6), ingestion.datetime.now(ingestion.UTC), ingestion.limits()).rows
    poisoned = list(rows[3])
    poisoned[1] = "not-a-time"
    batch = EventBatch.objects.create(payload=orjson.dumps([*rows[:3], poisoned, *rows[4:]]), n_accepted=6)
    after = EventBatch.objects.create(payload=orjson.dumps([list(r) for r in ingestion.validate_events(
        make_batch(4, 100), ingestion.datetime.now(ingestion.UTC), ingestion.limits()).rows]), n_accepted=4)
    ingestion.enqueue(batch.id)
    ingestion.enqueue(after.id)
    with processes.celery_worker(concurrency=1, log_path=tmp_path / "worker.log"):
        processes.wait_until(lambda: not EventBatch.objects.filter(status="pending").exists(), timeout=60,
                             what="the worker to finish both batches")
    batch.refresh_from_db()
    assert (batch.status, batch.n_inserted, batch.n_dead) == ("done", 5, 1)
    letter = DeadLetter.objects.get()
    assert letter.event["event_id"] == rows[3][0]
    assert "not-a-time" in letter.reason or "isoformat" in letter.reason
    assert stored_counts() == (9, 9)
