"""Validation of incoming events: one tight pass over plain dicts. Pure: no Django.

An accepted event becomes a row, a list in the column order of the events table:
[event_id, occurred_at (ISO 8601, UTC), user_id, type, pin_id, request_id, position],
then, only when there is something in them, [team, value, properties]: a served
impression of an interleaved list sets team (no client sends it); a client's event may
carry a numeric value and a small object of properties. Rows without them stay seven
columns, as every row in the inbox was before values existed.
"""

import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from experiments.assignment import user_id_errors

EVENT_TYPES = ("impression", "click", "save", "closeup", "hide")
MAX_PIN_ID = 2**63 - 1
MAX_POSITION = 10_000
# The request field each column of a row comes from, in row order.
ROW_FIELDS = ("event_id", "timestamp", "user_id", "type", "pin_id", "request_id", "position")
TEAM, VALUE, PROPERTIES = 7, 8, 9  # the optional columns after them
_FIELDS = frozenset((*ROW_FIELDS, "value", "properties"))
# An event's properties: a flat object a metric can filter on (platform, surface
# version, country), not a document: scalars only, few, short.
MAX_PROPERTIES = 20
MAX_PROPERTY_KEY = 64
MAX_PROPERTY_STRING = 256
MAX_PROPERTIES_BYTES = 2048
MAX_ABS_VALUE = 1e15
PROPERTY_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


@dataclass(frozen=True)
class EventLimits:
    max_events: int = 1000
    max_age: timedelta = timedelta(days=7)
    max_future: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class ValidatedBatch:
    rows: list[list]
    duplicates: int  # events repeating an event_id seen earlier in the same batch
    rejected: list[dict]  # [{"index": i, "errors": {field: [message]}}]


def _uuid(value, field, errors, required=True):
    if value is None:
        if required:
            errors[field] = ["This field is required."]
        return None
    if not isinstance(value, str):
        errors[field] = ["Must be a UUID string."]
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        errors[field] = ["Must be a UUID string."]
        return None


def _timestamp(value, now, limits, errors):
    if value is None:
        errors["timestamp"] = ["This field is required."]
        return None
    if not isinstance(value, str):
        errors["timestamp"] = ["Must be an ISO 8601 string with a time zone."]
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        errors["timestamp"] = ["Must be an ISO 8601 string with a time zone."]
        return None
    if parsed.tzinfo is None:
        errors["timestamp"] = ["Must carry a time zone (for example Z or +00:00)."]
        return None
    if parsed > now + limits.max_future:
        errors["timestamp"] = [f"More than {limits.max_future} in the future."]
        return None
    if parsed < now - limits.max_age:
        errors["timestamp"] = [f"Older than the accepted {limits.max_age.days} days."]
        return None
    return parsed.astimezone(UTC).isoformat()


def _value(value, errors):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or abs(value) > MAX_ABS_VALUE:
        errors["value"] = [f"Must be a finite number of at most {MAX_ABS_VALUE:.0e} in size (e.g. dwell time in ms)."]
        return None
    return float(value)


def _properties(value, errors) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        errors["properties"] = ["Must be an object of string keys and scalar values."]
        return None
    if len(value) > MAX_PROPERTIES:
        errors["properties"] = [f"At most {MAX_PROPERTIES} properties; got {len(value)}."]
        return None
    messages = []
    for key, item in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_PROPERTY_KEY or not PROPERTY_KEY.fullmatch(key):
            messages.append(f"{str(key)[:80]!r}: keys are 1–{MAX_PROPERTY_KEY} characters of letters, digits, "
                            "'_', '.' or '-', starting with a letter or '_'.")
        elif isinstance(item, dict | list):
            shape = "an object" if isinstance(item, dict) else "an array"
            messages.append(f"{key}: a string, number, boolean or null, not {shape} (properties do not nest).")
        elif isinstance(item, str) and len(item) > MAX_PROPERTY_STRING:
            messages.append(f"{key}: at most {MAX_PROPERTY_STRING} characters; got {len(item)}.")
        elif isinstance(item, float) and not math.isfinite(item):
            messages.append(f"{key}: numbers must be finite.")
        elif item is not None and not isinstance(item, str | int | float | bool):
            messages.append(f"{key}: a string, number, boolean or null.")
    if not messages and len(json.dumps(value, separators=(",", ":"))) > MAX_PROPERTIES_BYTES:
        messages.append(f"At most {MAX_PROPERTIES_BYTES:,} bytes as JSON.")
    if messages:
        errors["properties"] = messages
        return None
    return value


def with_team(row: list, team) -> list:
    """The row with a served impression's team set (its eighth column)."""
    row = list(row) + [None] * max(0, TEAM + 1 - len(row))
    row[TEAM] = team
    return row


def validate_event(event, now: datetime, limits: EventLimits) -> tuple[list | None, dict]:
    if not isinstance(event, dict):
        return None, {"non_field_errors": ["Must be an object."]}
    errors: dict[str, list[str]] = {}
    unknown = set(event) - _FIELDS
    if unknown:
        errors["non_field_errors"] = [f"Unknown fields: {', '.join(sorted(map(str, unknown)))}."]
    event_id = _uuid(event.get("event_id"), "event_id", errors)
    user_id = event.get("user_id")
    if messages := user_id_errors(user_id):
        errors["user_id"] = messages
    type_ = event.get("type")
    if not isinstance(type_, str) or type_ not in EVENT_TYPES:
        errors["type"] = [f"Must be one of: {', '.join(sorted(EVENT_TYPES))}."]
    pin_id = event.get("pin_id")
    if isinstance(pin_id, str) and pin_id.isdigit() and pin_id.isascii():
        pin_id = int(pin_id)
    if pin_id is None:
        errors["pin_id"] = ["This field is required."]
    elif isinstance(pin_id, bool) or not isinstance(pin_id, int) or not 0 <= pin_id <= MAX_PIN_ID:
        errors["pin_id"] = ["Must be a non-negative integer."]
    request_id = _uuid(event.get("request_id"), "request_id", errors, required=False)
    position = event.get("position")
    if position is not None and (isinstance(position, bool) or not isinstance(position, int)
                                 or not 0 <= position <= MAX_POSITION):
        errors["position"] = [f"Must be an integer from 0 to {MAX_POSITION}."]
    occurred_at = _timestamp(event.get("timestamp"), now, limits, errors)
    value = _value(event.get("value"), errors)
    properties = _properties(event.get("properties"), errors)
    if errors:
        return None, errors
    row = [event_id, occurred_at, user_id, type_, pin_id, request_id, position]
    if value is not None or properties is not None:
        row += [None, value, properties]
    return row, {}


def row_to_event(row) -> dict:
    """The inverse of validate_event: a row back to the request's event object (a served
    impression's team, a column no client sends, is kept as "team")."""
    event = dict(zip(ROW_FIELDS, row, strict=False))
    for index, name in ((TEAM, "team"), (VALUE, "value"), (PROPERTIES, "properties")):
        if len(row) > index and row[index] is not None:
            event[name] = row[index]
    return event


def validate_events(events, now: datetime, limits: EventLimits) -> ValidatedBatch:
    """Split a request's events into rows to store, in-request duplicates and rejections.

    Raises ValueError with a message when the batch itself is unusable (not a list,
    empty, too long): the whole request is then a 400.
    """
    if not isinstance(events, list):
        raise ValueError("events must be a list of event objects.")
    if not events:
        raise ValueError("events must not be empty.")
    if len(events) > limits.max_events:
        raise ValueError(f"At most {limits.max_events} events per request; got {len(events)}.")
    rows, rejected, seen, duplicates = [], [], set(), 0
    for index, event in enumerate(events):
        row, errors = validate_event(event, now, limits)
        if errors:
            rejected.append({"index": index, "errors": errors})
            continue
        key = (row[0], row[1])
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        rows.append(row)
    return ValidatedBatch(rows=rows, duplicates=duplicates, rejected=rejected)
