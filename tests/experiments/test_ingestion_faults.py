"""Faults, with real processes on the real broker and database: killed workers, a
killed worker process group, a Redis restarted without persistence. After each,
every accepted event is stored exactly once."""

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from django.conf import settings
from django.db import connection

from experiments import ingestion, partitions
from experiments.models import EventBatch
from tests import processes
from tests.experiments.events_helpers import make_batch

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
    processes.wait_until(lambda: stored_counts()[0] >= accepted and ingestion.stats()["pending_batches"] == 0,
                         timeout=timeout, interval=0.5, what=f"{accepted} events to be stored")
    return time.monotonic() - started


def assert_exactly_once(accepted: int):
    total, distinct = stored_counts()
    assert total == distinct == accepted
    stats = ingestion.stats()
    assert stats["stored"] == accepted and stats["pending_batches"] == 0 and stats["dead_lettered"] == 0


def post_batches(client, n_batches: int, size: int, start: int = 0) -> int:
    accepted = 0
    for b in range(n_batches):
        response = client.post("/api/v1/events", {"events": make_batch(size, start + b * size)}, format="json")
        assert response.status_code == 202, response.content
        accepted += response.json()["accepted"]
    return accepted


def test_worker_children_killed_mid_stream_lose_nothing(key_client, tmp_path):
    partitions.ensure_schedules()
    accepted = post_batches(key_client, 100, 1000)  # all in the broker before a worker takes any
    with processes.celery_beat(tmp_path / "beat.log"), \
            processes.celery_worker(concurrency=2, log_path=tmp_path / "w1.log") as worker:
        processes.wait_until(lambda: stored_counts()[0] > 5_000, timeout=60, interval=0.05,
                             what="the worker to start storing")
        killed = processes.children_of(worker.pid)
        for pid in killed:  # the pool processes, mid-batch: their tasks are requeued
            os.kill(pid, signal.SIGKILL)
        assert killed
        assert stored_counts()[0] < accepted, "everything was stored before the kill; the test proves nothing"
        wait_all_stored(accepted, timeout=120)
    assert accepted == 100_000
    assert_exactly_once(accepted)


def test_whole_worker_group_killed_is_redelivered_within_a_minute(key_client, tmp_path):
    partitions.ensure_schedules()
    accepted = post_batches(key_client, 20, 1000)
    with processes.celery_beat(tmp_path / "beat.log"):
        with processes.celery_worker(concurrency=2, log_path=tmp_path / "w1.log") as first:
            processes.wait_until(lambda: stored_counts()[0] > 0, timeout=60, interval=0.05,
                                 what="the first batch to be stored")
            processes.kill_group(first)  # main process and pool together: nothing is rejected or requeued
        left = accepted - stored_counts()[0]
        assert left > 0, "everything was stored before the kill; the test proves nothing"
        killed_at = time.monotonic()
        with processes.celery_worker(concurrency=2, log_path=tmp_path / "w2.log"):
            wait_all_stored(accepted, timeout=90)
            recovered_in = time.monotonic() - killed_at
    assert_exactly_once(accepted)
    assert recovered_in < 60, f"took {recovered_in:.0f} s"


def _post_http(base, key, events) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{base}/api/v1/events", data=json.dumps({"events": events}).encode(),
        headers={"Authorization": f"Api-Key {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def test_redis_restarted_without_persistence_mid_stream(tmp_path):
    from accounts.services import create_api_key

    key = create_api_key("fault-test").key
    partitions.ensure_schedules()
    with processes.redis_server() as (redis_proc, redis_url):
        port = redis_url.rsplit(":", 1)[1].split("/")[0]
        # The sweep re-enqueues what the restart lost; 10 s instead of 30 keeps the test short.
        env = {"CELERY_BROKER_URL": redis_url, "CELERY_RESULT_BACKEND": redis_url, "EVENTS_SWEEP_AFTER_SECONDS": 10}
        with processes.web_server(workers=2, **env) as base, \
                processes.celery_beat(tmp_path / "beat.log", **env), \
                processes.celery_worker(concurrency=2, log_path=tmp_path / "worker.log", **env):
            statuses, accepted, n = [], 0, 0
            for phase in ("before", "down", "after"):
                if phase == "down":
                    redis_proc.send_signal(signal.SIGKILL)
                    redis_proc.wait()
                if phase == "after":
                    redis_proc = subprocess.Popen(
                        ["redis-server", "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
                    time.sleep(0.5)
                for _ in range(8):
                    status, body = _post_http(base, key, make_batch(500, n))
                    n += 500
                    statuses.append(status)
                    if status == 202:
                        accepted += body["accepted"]
            try:
                wait_all_stored(accepted, timeout=120)
            finally:
                redis_proc.kill()
                redis_proc.wait()
    assert set(statuses) <= {202, 503}, statuses  # never a 500
    assert accepted >= 8 * 500
    assert_exactly_once(accepted)
