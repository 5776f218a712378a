import uuid
from datetime import UTC, datetime, timedelta


def make_event(i: int = 0, **overrides) -> dict:
    event = {
        "event_id": str(uuid.uuid4()),
        "user_id": f"user-{i % 997}",
        "type": ("impression", "click", "save", "closeup", "hide")[i % 5],
        "pin_id": 1000 + i,
        "request_id": str(uuid.uuid4()),
        "position": i % 25,
        "timestamp": (datetime.now(UTC) - timedelta(seconds=i % 600)).isoformat(),
    }
    event.update(overrides)
    return event


def make_batch(n: int, start: int = 0) -> list[dict]:
    return [make_event(start + i) for i in range(n)]
