"""Served impressions of the closeup: one inbox batch per flush of a per-process
buffer, through the same ingestion path as client events, off the request path."""

import uuid

from django.conf import settings

from core.buffers import BatchBuffer
from events import ingestion
from events.validation import ValidatedBatch


def _send_impressions(rows: list) -> None:
    # Rows the server made itself, already in storage form: no validation pass needed.
    ingestion.store_in_inbox(ValidatedBatch(rows=rows, duplicates=0, rejected=[]), source="closeup")


impressions = BatchBuffer("served impressions", _send_impressions, lambda: settings.EVENTS_MAX_PER_REQUEST,
                          lambda: settings.EXPOSURE_FLUSH_SECONDS)


def log_served(request_id: str, served_at: str, user_id: str, items, team_ids: dict[str, int] | None = None) -> None:
    """One impression per served item, in the events table's row order (events/validation.py),
    with an eighth column when the list was interleaved: the id of the item's team's variant."""
    for item in items:
        row = [str(uuid.uuid4()), served_at, user_id, "impression", item.pin_id, request_id, item.position]
        if item.team is not None and team_ids:
            row.append(team_ids[item.team])
        impressions.add(row)
