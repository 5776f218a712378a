"""The pure event validation: what is accepted, what is rejected and why."""

from datetime import UTC, datetime, timedelta

import pytest

from events.validation import EventLimits, validate_event, validate_events
from tests.events.events_helpers import make_event

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
LIMITS = EventLimits(max_events=1000, max_age=timedelta(days=7), max_future=timedelta(minutes=5))


def good(**overrides):
    return make_event(1, **{"timestamp": "2026-11-25T11:00:00+00:00", **overrides})


def test_a_good_event_becomes_a_row_in_utc():
    event = good(timestamp="2026-11-25T13:00:00+02:00", pin_id="42")
    row, errors = validate_event(event, NOW, LIMITS)
    assert errors == {}
    assert row == [event["event_id"], "2026-11-25T11:00:00+00:00", event["user_id"], "click", 42,
                   event["request_id"], 1]


@pytest.mark.parametrize(
    "overrides, field, fragment",
    [
        ({"event_id": "not-a-uuid"}, "event_id", "UUID"),
        ({"event_id": None}, "event_id", "required"),
        ({"user_id": ""}, "user_id", "non-empty"),
        ({"user_id": "a\x00b"}, "user_id", "NUL"),
        ({"type": "purchase"}, "type", "one of"),
        ({"pin_id": -1}, "pin_id", "non-negative"),
        ({"pin_id": 1.5}, "pin_id", "non-negative"),
        ({"pin_id": True}, "pin_id", "non-negative"),
        ({"position": -3}, "position", "0 to"),
        ({"request_id": 12}, "request_id", "UUID"),
        ({"timestamp": "yesterday"}, "timestamp", "ISO 8601"),
        ({"timestamp": "2026-11-25T11:00:00"}, "timestamp", "time zone"),
        ({"timestamp": "2026-11-25T12:10:00+00:00"}, "timestamp", "future"),
        ({"timestamp": "2026-11-01T12:00:00+00:00"}, "timestamp", "Older than"),
        ({"experiment": "x"}, "non_field_errors", "Unknown fields: experiment"),
    ],
)
def test_bad_fields_are_rejected_with_a_reason(overrides, field, fragment):
    row, errors = validate_event(good(**overrides), NOW, LIMITS)
    assert row is None
    assert fragment in errors[field][0]


def test_batch_keeps_good_events_rejects_bad_ones_and_counts_repeats():
    first = good()
    events = [first, good(type="nope"), dict(first), good(), "not an object"]
    batch = validate_events(events, NOW, LIMITS)
    assert len(batch.rows) == 2
    assert batch.duplicates == 1
    assert [r["index"] for r in batch.rejected] == [1, 4]
    assert batch.rejected[0]["errors"]["type"]


@pytest.mark.parametrize("events, message", [({}, "must be a list"), ([], "must not be empty"),
                                             ([{}] * 1001, "At most 1000")])
def test_unusable_batches_raise(events, message):
    with pytest.raises(ValueError, match=message):
        validate_events(events, NOW, LIMITS)
