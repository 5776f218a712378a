"""Events with a value (dwell time) and properties (platform): accepted within limits,
refused with a message naming what is wrong, stored as sent on PostgreSQL and SQLite,
and kept through a dead letter's replay; rows stored before values existed still store."""

import json
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from events import ingestion
from events.models import DeadLetter, Event, EventBatch
from events.validation import MAX_PROPERTIES, EventLimits, validate_event
from tests.events.events_helpers import make_event

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _only_this_tests_batches(db):
    EventBatch.objects.all().delete()


def _store_pending():
    for batch_id in EventBatch.objects.filter(status="pending").values_list("id", flat=True):
        ingestion.store_batch(batch_id)


def test_values_and_properties_are_stored_as_sent(key_client):
    events = [make_event(0, type="closeup", value=5230.5, properties={"platform": "ios", "app_version": "12.3.1",
                                                                     "is_tablet": False, "screen_dp": 412}),
              make_event(1, type="click"),
              make_event(2, type="closeup", value=0, properties=None)]
    answer = key_client.post("/api/v1/events", {"events": events}, format="json")
    assert answer.status_code == 202 and answer.json()["accepted"] == 3
    _store_pending()
    stored = {str(e.event_id): e for e in Event.objects.all()}
    first = stored[events[0]["event_id"]]
    assert first.value == 5230.5
    assert first.properties == {"platform": "ios", "app_version": "12.3.1", "is_tablet": False, "screen_dp": 412}
    assert stored[events[1]["event_id"]].value is None and stored[events[1]["event_id"]].properties is None
    assert stored[events[2]["event_id"]].value == 0.0


@pytest.mark.parametrize(("field", "bad", "fragment"), [
    ("value", "12", "finite number"), ("value", True, "finite number"), ("value", 1e16, "finite number"),
    ("properties", ["ios"], "object"),
    ("properties", {"platform": {"os": "ios"}}, "platform: a string, number, boolean or null, not an object"),
    ("properties", {"tags": ["a", "b"]}, "not an array"),
    ("properties", {"": "x"}, "keys are 1–64 characters"),
    ("properties", {"a b": 1}, "keys are 1–64 characters"),
    ("properties", {"'; DROP TABLE experiments_event; --": 1}, "keys are 1–64 characters"),
    ("properties", {"k" * 65: 1}, "keys are 1–64 characters"),
    ("properties", {"note": "x" * 257}, "at most 256 characters"),
    ("properties", {f"p{i}": i for i in range(MAX_PROPERTIES + 1)}, f"At most {MAX_PROPERTIES} properties"),
    ("properties", {f"p{i}": "x" * 200 for i in range(15)}, "2,048 bytes"),
])
def test_each_limit_is_refused_with_a_message_naming_the_field(key_client, field, bad, fragment):
    answer = key_client.post("/api/v1/events", {"events": [make_event(0, **{field: bad}), make_event(1)]},
                             format="json")
    assert answer.status_code == 202
    (rejected,) = answer.json()["rejected"]
    assert rejected["index"] == 0 and fragment in " ".join(rejected["errors"][field])


def test_a_hostile_property_value_is_stored_as_text(key_client):
    hostile = {"platform": "ios'); DELETE FROM experiments_event; --", "q": "\\x00\" OR 1=1"}
    key_client.post("/api/v1/events", {"events": [make_event(0, properties=hostile), make_event(1)]}, format="json")
    _store_pending()
    assert Event.objects.count() == 2
    assert Event.objects.get(properties__isnull=False).properties == hostile


def test_value_and_properties_survive_a_dead_letter_and_its_replay():
    rows = ingestion.validate_events(
        [make_event(i, type="closeup", value=100.0 * (i + 1), properties={"platform": "android"}) for i in range(3)],
        datetime.now(UTC), ingestion.limits()).rows
    poisoned = list(rows[1])
    poisoned[1] = "not-a-time"
    batch = EventBatch.objects.create(payload=orjson.dumps([rows[0], poisoned, rows[2]]), n_accepted=3)
    ingestion.store_batch(batch.id)
    letter = DeadLetter.objects.get()
    assert letter.event["value"] == 200.0 and letter.event["properties"] == {"platform": "android"}
    letter.event["timestamp"] = rows[1][1]
    letter.save()
    ingestion.replay_dead_letters()
    _store_pending()
    assert sorted(Event.objects.values_list("value", flat=True)) == [100.0, 200.0, 300.0]
    assert set(json.dumps(p) for p in Event.objects.values_list("properties", flat=True)) == {'{"platform": "android"}'}


def test_rows_accepted_before_values_existed_still_store():
    rows = ingestion.validate_events([make_event(i, type="impression") for i in range(2)], datetime.now(UTC),
                                     ingestion.limits()).rows
    assert all(len(r) == 7 for r in rows)  # no value, no properties: the old shape
    old_shapes = [rows[0], [*rows[1], 17]]  # a client event, and an interleaved impression with its team
    batch = EventBatch.objects.create(payload=orjson.dumps(old_shapes), n_accepted=2)
    ingestion.store_batch(batch.id)
    assert set(Event.objects.values_list("team", "value")) == {(17, None), (None, None)}


scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**53, 2**53), st.text(max_size=40),
                    st.floats(allow_nan=False, allow_infinity=False))


@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True), scalars, max_size=MAX_PROPERTIES))
def test_any_flat_object_within_the_limits_is_accepted_unchanged(properties):
    row, errors = validate_event(make_event(0, properties=properties), datetime.now(UTC), EventLimits())
    if len(json.dumps(properties, separators=(",", ":"))) <= 2048:
        assert errors == {} and row[9] == properties
    else:
        assert "properties" in errors
