"""POST /api/v1/events and the inbox → storage path, run in process."""

import uuid

import orjson
import pytest
from django.db import connection

from events import ingestion
from events.models import DeadLetter, Event, EventBatch
from events.selectors import broker_queue_depth, ingestion_stats
from tests.conftest import as_user
from tests.events.events_helpers import make_batch, make_event

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _an_inbox_of_this_tests_batches_only(db):
    # A closeup served in an earlier test logs its impressions through the buffer's own
    # thread, whose connection commits outside that test's transaction: those batches
    # are not this test's to count.
    EventBatch.objects.all().delete()


def post(client, events):
    return client.post("/api/v1/events", {"events": events}, format="json")


def store_pending():
    for batch_id in EventBatch.objects.filter(status="pending").values_list("id", flat=True):
        ingestion.store_batch(batch_id)


def test_good_events_are_accepted_bad_ones_rejected_by_index(key_client):
    events = make_batch(5)
    events[1]["type"] = "purchase"
    events[3]["timestamp"] = "2001-01-01T00:00:00+00:00"
    response = post(key_client, events)
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 3 and body["duplicates"] == 0
    assert [r["index"] for r in body["rejected"]] == [1, 3]
    assert "one of" in body["rejected"][0]["errors"]["type"][0]
    assert "Older than" in body["rejected"][1]["errors"]["timestamp"][0]
    batch = EventBatch.objects.get()
    assert (batch.status, batch.n_accepted, batch.n_rejected) == ("pending", 3, 2)


def test_a_batch_with_every_event_rejected_is_400_with_each_reason(key_client):
    events = make_batch(3)
    for event in events:
        event["type"] = "purchase"
    response = post(key_client, events)
    assert response.status_code == 400
    body = response.json()
    assert body["accepted"] == 0 and [r["index"] for r in body["rejected"]] == [0, 1, 2]
    assert "No event in the batch is valid" in body["events"][0]
    assert not EventBatch.objects.filter(status="pending").exists()  # nothing to store


def test_the_user_id_rule_is_worded_the_same_by_every_endpoint(key_client, built):
    bad = "x" * 256
    assignment = key_client.post("/api/v1/assignments", {"user_id": bad}, format="json").json()["user_id"]
    closeup = key_client.get(f"/api/v1/closeup/5?user_id={bad}").json()["user_id"]
    event = post(key_client, [{**make_batch(1)[0], "user_id": bad}]).json()["rejected"][0]["errors"]["user_id"]
    assert assignment == closeup == event == ["Must be a non-empty string of at most 255 characters, without NUL."]


def test_stored_events_match_what_was_sent(key_client):
    events = make_batch(50)
    post(key_client, events)
    store_pending()
    stored = {str(e.event_id): e for e in Event.objects.all()}
    assert set(stored) == {e["event_id"] for e in events}
    sample = events[7]
    row = stored[sample["event_id"]]
    assert (row.user_id, row.type, row.pin_id, row.position) == (
        sample["user_id"], sample["type"], sample["pin_id"], sample["position"])
    assert str(row.request_id) == sample["request_id"]
    assert EventBatch.objects.get().payload is None  # the inbox does not keep what is stored


def test_same_events_posted_twice_are_stored_once(key_client):
    events = make_batch(100)
    post(key_client, events)
    again = post(key_client, events[:60] + events[:10])  # a retry, with repeats inside it too
    assert again.json()["duplicates"] == 10
    store_pending()
    assert Event.objects.count() == 100
    stats = ingestion_stats()
    assert stats["accepted"] == 160 and stats["stored"] == 100 and stats["duplicates"] == 70


def test_a_batch_delivered_twice_is_stored_once(key_client):
    post(key_client, make_batch(30))
    batch_id = EventBatch.objects.get().id
    first = ingestion.store_batch(batch_id)
    assert first.n_inserted == 30
    assert ingestion.store_batch(batch_id) is None  # the redelivery finds it done
    assert Event.objects.count() == 30


def test_a_poisoned_event_is_dead_lettered_and_the_rest_are_stored():
    good = [make_event(i) for i in range(5)]
    rows = ingestion.validate_events(good, ingestion.datetime.now(ingestion.UTC), ingestion.limits()).rows
    poisoned = list(rows[2])
    poisoned[1] = "not-a-time"  # what validation would never let through: the write refuses it
    batch = EventBatch.objects.create(payload=orjson.dumps([*rows[:2], poisoned, *rows[3:]]), n_accepted=5)
    done = ingestion.store_batch(batch.id)
    assert (done.n_inserted, done.n_dead, done.status) == (4, 1, "done")
    letter = DeadLetter.objects.get()
    assert letter.event["event_id"] == rows[2][0]
    assert "not-a-time" in letter.reason or "Invalid isoformat" in letter.reason
    assert ingestion_stats()["dead_lettered"] == 1


def test_dead_letters_replay(key_client):
    events = make_batch(3)
    batch = EventBatch.objects.create(payload=orjson.dumps([]), n_accepted=0)
    for e in events:
        DeadLetter.objects.create(batch=batch, event={**e}, reason="test: broker lost it")
    from django.core.management import call_command

    call_command("replay_dead_letters")
    store_pending()
    assert Event.objects.count() == 3
    assert not DeadLetter.objects.filter(replayed_at__isnull=True).exists()


def test_an_interleaved_impression_keeps_its_team_through_a_dead_letter_and_its_replay():
    rows = ingestion.validate_events([make_event(i, type="impression", position=i) for i in range(3)],
                                     ingestion.datetime.now(ingestion.UTC), ingestion.limits()).rows
    labelled = [r + [41 + i] for i, r in enumerate(rows)]  # as serving/impressions.py writes them
    poisoned = list(labelled[1])
    poisoned[1] = "not-a-time"
    batch = EventBatch.objects.create(payload=orjson.dumps([labelled[0], poisoned, labelled[2]]), n_accepted=3)
    ingestion.store_batch(batch.id)
    letter = DeadLetter.objects.get()
    assert letter.event["team"] == 42
    letter.event["timestamp"] = rows[1][1]  # an operator mends the bad field, then replays
    letter.save()
    ingestion.replay_dead_letters()
    store_pending()
    assert sorted(Event.objects.values_list("position", "team")) == [(0, 41), (1, 42), (2, 43)]


def test_batch_that_keeps_failing_is_dead_lettered_by_the_sweep(settings):
    from datetime import timedelta

    from django.utils import timezone

    rows = ingestion.validate_events(make_batch(4), ingestion.datetime.now(ingestion.UTC), ingestion.limits()).rows
    batch = EventBatch.objects.create(payload=orjson.dumps(rows), n_accepted=4, attempts=settings.EVENTS_MAX_ATTEMPTS,
                                      error="OperationalError: server closed the connection",
                                      enqueued_at=timezone.now() - timedelta(minutes=5))
    result = ingestion.sweep()
    assert result["dead"] == [batch.id]
    assert DeadLetter.objects.count() == 4
    assert "OperationalError" in DeadLetter.objects.first().reason


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        ({"events": []}, 400, "must not be empty"),
        ({"events": "x"}, 400, "must be a list"),
        ({}, 400, "required"),
        ({"events": [make_event(i) for i in range(1001)]}, 400, "At most 1000"),
    ],
)
def test_unusable_requests_are_400(key_client, body, status, fragment):
    response = key_client.post("/api/v1/events", body, format="json")
    assert response.status_code == status
    assert fragment in response.json()["events"][0]
    assert not EventBatch.objects.exists()


def test_malformed_json_and_oversized_body(key_client, settings):
    bad = key_client.post("/api/v1/events", data=b'{"events": [', content_type="application/json")
    assert bad.status_code == 400
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    big = post(key_client, make_batch(200))
    assert big.status_code == 413
    assert not EventBatch.objects.exists()


def test_events_need_an_api_key(api_client, viewer):
    assert post(api_client, make_batch(1)).status_code == 401
    assert post(as_user(viewer), make_batch(1)).status_code in (401, 403)


def test_ingestion_stats_for_operators(key_client, viewer):
    post(key_client, make_batch(10) + [{"event_id": "bad"}])
    stats = as_user(viewer).get("/api/v1/ingestion/stats").json()
    assert (stats["accepted"], stats["rejected"], stats["pending_batches"], stats["pending_events"]) == (10, 1, 1, 10)
    assert key_client.get("/api/v1/ingestion/stats").status_code in (401, 403)


def test_events_land_in_day_partitions_on_postgres(key_client):
    if connection.vendor != "postgresql":
        pytest.skip("partitioning is PostgreSQL's")
    post(key_client, make_batch(20))
    store_pending()
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text, count(*) FROM experiments_event GROUP BY 1")
        partitions = dict(cursor.fetchall())
    assert sum(partitions.values()) == 20
    assert all(name.startswith("experiments_event_p2") for name in partitions)


def test_event_ids_are_uuids_in_storage(key_client):
    events = make_batch(2)
    post(key_client, events)
    store_pending()
    assert {e.event_id for e in Event.objects.all()} == {uuid.UUID(e["event_id"]) for e in events}


def test_one_worker_call_stores_many_small_batches_each_with_its_own_account(settings):
    """Small pending batches are stored together (one transaction), and each keeps its
    own counts and dead letters; batches beyond the limit wait for their own task."""
    settings.EVENTS_STORE_MAX_BATCHES = 8
    now = ingestion.datetime.now(ingestion.UTC)
    ids, first_rows = [], None
    for b in range(10):
        rows = ingestion.validate_events(make_batch(5, start=b * 5), now, ingestion.limits()).rows
        first_rows = first_rows or rows
        if b == 4:
            rows[0] = first_rows[0]  # sent again in a later request: stored once
        if b == 6:
            rows[2] = [rows[2][0], "not-a-time", *rows[2][2:]]  # poisoned
        ids.append(EventBatch.objects.create(payload=orjson.dumps(rows), n_accepted=len(rows)).id)

    asked = ingestion.store_batch(ids[3])
    assert asked.status == "done" and asked.n_inserted == 5
    batches = {b.id: b for b in EventBatch.objects.all()}
    done = [i for i in ids if batches[i].status == "done"]
    assert len(done) == 8 and ids[3] in done  # the asked-for batch and 7 others, oldest first
    assert (batches[ids[6]].n_inserted, batches[ids[6]].n_dead) == (4, 1)
    assert DeadLetter.objects.get().batch_id == ids[6]
    assert (batches[ids[4]].n_inserted, batches[ids[4]].n_duplicates) == (4, 1)
    assert Event.objects.count() == sum(batches[i].n_inserted for i in done)
    assert ingestion.store_batch(ids[3]) is None  # its own task, delivered later, finds it done
    store_pending()
    assert not EventBatch.objects.filter(status="pending").exists()
    assert Event.objects.count() == 10 * 5 - 2  # less the duplicate and the poisoned event


def test_a_batch_that_breaks_its_group_is_left_alone_and_the_others_are_sent_again():
    """A payload that cannot even be read fails the group's transaction: the asked-for
    batch is then stored alone, the broken one stays pending (charged on its own task),
    and the rest of the group goes back to the broker instead of waiting for the sweep."""
    now = ingestion.datetime.now(ingestion.UTC)
    good = [EventBatch.objects.create(
        payload=orjson.dumps(ingestion.validate_events(make_batch(3, start=10 * b), now, ingestion.limits()).rows),
        n_accepted=3).id for b in range(3)]
    broken = EventBatch.objects.create(payload=b"\x00 not json", n_accepted=3).id
    depth = broker_queue_depth()
    done = ingestion.store_batch(good[2])
    assert done.status == "done" and done.n_inserted == 3
    statuses = dict(EventBatch.objects.values_list("id", "status"))
    assert statuses[broken] == "pending" and statuses[good[0]] == statuses[good[1]] == "pending"
    if depth is not None:  # a broker that can count its queue: the group's others were re-sent
        assert broker_queue_depth() - depth == 3
    assert Event.objects.count() == 3
