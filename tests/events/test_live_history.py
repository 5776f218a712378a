"""The live history store (events/live_history.py) on both backends: cap, order, TTL,
and the ingestion worker's write after the commit, which never fails a batch."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from events import ingestion, live_history
from events.live_history import MemoryHistory, RedisHistory
from events.models import Event, EventBatch
from tests import processes
from tests.events.events_helpers import make_event


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def redis_url():
    # A Redis of the module's own: lists written in the shared one would outlive the run.
    with processes.redis_server() as (_, url):
        yield url


@pytest.fixture(params=["memory", "redis"])
def backend(request):
    """(make(length, ttl) -> store, expire(store, key) -> None): each backend, and how to
    let a user's list outlive its TTL without sleeping through it."""
    if request.param == "memory":
        clock = FakeClock()

        def expire(store, ttl):
            clock.now += ttl + 0.001

        yield (lambda length, ttl: MemoryHistory(length, ttl, clock=clock)), expire
        return
    url = request.getfixturevalue("redis_url")
    made = []

    def make(length, ttl):
        made.append(RedisHistory(url, length, ttl, timeout_seconds=1.0))
        made[-1].clear()
        return made[-1]

    def expire(store, ttl):
        processes.wait_until(lambda: not store.client.exists(live_history.KEY_PREFIX + "u1"), timeout=ttl + 3,
                             what="Redis to expire the list")

    yield make, expire
    for store in made:
        store.clear()


def test_newest_first_and_capped(backend):
    make, _ = backend
    store = make(3, 60)
    store.append({"u1": [(1, 1.0), (2, 2.0)], "u2": [(9, 1.0)]})
    assert store.recent("u1") == [(2, 2.0), (1, 1.0)]
    store.append({"u1": [(3, 1.0), (4, 1.0)]})
    assert store.recent("u1") == [(4, 1.0), (3, 1.0), (2, 2.0)]  # the oldest fell off the cap
    assert store.recent("u2") == [(9, 1.0)]
    assert store.recent("nobody") == []


def test_a_list_expires_its_ttl_after_its_last_write(backend):
    make, expire = backend
    store = make(5, 1)
    store.append({"u1": [(1, 1.0)]})
    assert store.recent("u1") == [(1, 1.0)]
    expire(store, 1)
    assert store.recent("u1") == []
    store.append({"u1": [(2, 1.0)]})  # a new list, not the expired one's entries
    assert store.recent("u1") == [(2, 1.0)]


def test_redis_write_is_one_command_per_batch_with_the_ttl(redis_url):
    store = RedisHistory(redis_url, 2, 600, timeout_seconds=1.0)
    store.clear()
    sent = []
    real = store.client.execute_command

    def counting(*args, **kwargs):
        sent.append(args[0])
        return real(*args, **kwargs)

    store.client.execute_command = counting
    store.append({f"u{i}": [(i, 1.0), (i + 1, 1.0), (i + 2, 1.0)] for i in range(50)})
    assert sent == ["EVALSHA"] or sent == ["EVALSHA", "SCRIPT LOAD", "EVALSHA"]  # the script loaded on first use
    assert store.recent("u7") == [(9, 1.0), (8, 1.0)]
    assert 0 < store.client.ttl(live_history.KEY_PREFIX + "u7") <= 600
    store.clear()


def test_an_entry_redis_holds_that_is_not_ours_is_skipped(redis_url):
    store = RedisHistory(redis_url, 5, 600, timeout_seconds=1.0)
    store.clear()
    store.client.lpush(live_history.KEY_PREFIX + "u1", "7:1", "not-a-pin", "\xff:2")
    assert store.recent("u1") == [(7, 1.0)]
    store.clear()


def test_the_memory_store_keeps_at_most_max_users_the_least_recently_written_dropped():
    store = MemoryHistory(5, 60, max_users=2)
    store.append({"a": [(1, 1.0)]})
    store.append({"b": [(2, 1.0)]})
    store.append({"a": [(3, 1.0)]})
    store.append({"c": [(4, 1.0)]})
    assert [store.recent(u) for u in "abc"] == [[(3, 1.0), (1, 1.0)], [], [(4, 1.0)]]


def test_only_clicks_and_saves_by_time_with_the_built_history_weights():
    rows = [[f"e{i}", ts, user, kind, pin, None, None] for i, (ts, user, kind, pin) in enumerate([
        ("2026-12-04T10:00:02+00:00", "u", "save", 2),
        ("2026-12-04T10:00:01+00:00", "u", "click", 1),
        ("2026-12-04T10:00:03+00:00", "u", "impression", 3),
        ("2026-12-04T10:00:04+00:00", "u", "closeup", 4),
        ("2026-12-04T10:00:05+00:00", "u", "hide", 5),
        ("2026-12-04T10:00:00.500000+00:00", "v", "click", 6),
    ])]
    assert live_history.engagements_by_user(rows) == {"u": [(1, 1.0), (2, 2.0)], "v": [(6, 1.0)]}


def _stored(events, django_capture_on_commit_callbacks):
    accepted = ingestion.accept(events)
    with django_capture_on_commit_callbacks(execute=True):
        ingestion.store_batch(accepted.batch_id)
    return EventBatch.objects.get(pk=accepted.batch_id)


@pytest.mark.django_db
def test_without_redis_or_memory_the_events_table_is_the_history(settings):
    """make run: the worker and the web server are separate processes and share only the
    database, so the closeup reads the stored clicks and saves themselves."""
    settings.LIVE_HISTORY_REDIS_URL, settings.LIVE_HISTORY_IN_MEMORY = "", False
    settings.LIVE_HISTORY_LENGTH, settings.LIVE_HISTORY_TTL_SECONDS = 3, 3600
    assert isinstance(live_history.store(), live_history.DatabaseHistory)
    now = datetime.now(UTC)
    at = lambda minutes: (now - timedelta(minutes=minutes)).isoformat()  # noqa: E731
    events = [make_event(0, user_id="fan", type="click", pin_id=11, timestamp=at(90)),  # older than the TTL
              make_event(1, user_id="fan", type="click", pin_id=12, timestamp=at(4)),
              make_event(2, user_id="fan", type="impression", pin_id=13, timestamp=at(3)),
              make_event(3, user_id="fan", type="save", pin_id=14, timestamp=at(2)),
              make_event(4, user_id="other", type="click", pin_id=15, timestamp=at(2)),
              make_event(5, user_id="fan", type="click", pin_id=16, timestamp=at(1)),
              make_event(6, user_id="fan", type="click", pin_id=17, timestamp=at(0))]
    ingestion.store_batch(ingestion.accept(events).batch_id)
    # Newest first, clicks and saves only, within the TTL, at most LIVE_HISTORY_LENGTH.
    assert live_history.recent("fan") == [(17, 1.0), (16, 1.0), (14, 2.0)]
    settings.LIVE_HISTORY_LENGTH = 10
    assert live_history.recent("fan") == [(17, 1.0), (16, 1.0), (14, 2.0), (12, 1.0)]


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["memory", "redis"])
def test_the_worker_writes_a_stored_batch_s_engagements_after_the_commit(where, settings, request,
                                                                           django_capture_on_commit_callbacks):
    settings.LIVE_HISTORY_REDIS_URL = request.getfixturevalue("redis_url") if where == "redis" else ""
    live_history.store().clear()
    now = datetime.now(UTC)
    events = [make_event(0, user_id="fan", type="click", pin_id=11, timestamp=(now - timedelta(seconds=3)).isoformat()),
              make_event(1, user_id="fan", type="impression", pin_id=12,
                         timestamp=(now - timedelta(seconds=2)).isoformat()),
              make_event(2, user_id="fan", type="save", pin_id=13, timestamp=(now - timedelta(seconds=1)).isoformat())]
    accepted = ingestion.accept(events)
    with django_capture_on_commit_callbacks() as callbacks:
        ingestion.store_batch(accepted.batch_id)
    assert live_history.recent("fan") == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert live_history.recent("fan") == [(13, 2.0), (11, 1.0)]
    assert live_history.counters.as_dict() == {"batches_written": 1, "engagements_written": 2, "write_failures": 0}
    live_history.store().clear()


@pytest.mark.django_db
def test_a_redis_outage_costs_the_history_not_the_batch(settings, django_capture_on_commit_callbacks):
    with processes.blackhole_server() as port:
        settings.LIVE_HISTORY_REDIS_URL = f"redis://127.0.0.1:{port}/0"
        settings.LIVE_HISTORY_TIMEOUT_MS = 50
        started = time.monotonic()
        batch = _stored([make_event(i, type="click") for i in range(5)], django_capture_on_commit_callbacks)
        elapsed = time.monotonic() - started
    assert batch.status == EventBatch.Status.DONE and batch.n_inserted == 5
    assert Event.objects.filter(batch_id=batch.id).count() == 5
    assert live_history.counters.write_failures == 1
    assert elapsed < 5  # one short timeout, no retries


@pytest.mark.django_db
def test_off_writes_and_reads_nothing(settings, django_capture_on_commit_callbacks):
    settings.LIVE_HISTORY = False
    _stored([make_event(0, user_id="fan", type="click")], django_capture_on_commit_callbacks)
    settings.LIVE_HISTORY = True
    assert live_history.recent("fan") == []
