"""Reads of the event pipeline: the ingestion counters and a user's hidden pins."""

import dataclasses
from datetime import datetime

import redis
from django.conf import settings
from django.db.models import Count, Min, Q, Sum

from events.models import DeadLetter, EventBatch, HiddenPin


def hidden_pins_of(user_id: str) -> set[int]:
    return set(HiddenPin.objects.filter(user_id=user_id).values_list("pin_id", flat=True))


def ingestion_stats() -> dict:
    totals = EventBatch.objects.aggregate(
        batches=Count("id"),
        accepted=Sum("n_accepted"),
        rejected=Sum("n_rejected"),
        duplicates_in_request=Sum("n_duplicates_in_request"),
        stored=Sum("n_inserted"),
        duplicates=Sum("n_duplicates"),
        pending_batches=Count("id", filter=Q(status=EventBatch.Status.PENDING)),
        pending_events=Sum("n_accepted", filter=Q(status=EventBatch.Status.PENDING)),
    )
    totals = {k: v or 0 for k, v in totals.items()}
    return {
        "accepted": totals["accepted"],
        "stored": totals["stored"],
        "duplicates": totals["duplicates"] + totals["duplicates_in_request"],
        "rejected": totals["rejected"],
        "dead_lettered": DeadLetter.objects.filter(replayed_at__isnull=True).count(),
        "pending_batches": totals["pending_batches"],
        "pending_events": totals["pending_events"],
        "broker_queue_depth": broker_queue_depth(),
    }


def broker_queue_depth() -> int | None:
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        return int(client.llen(settings.CELERY_TASK_DEFAULT_QUEUE))
    except redis.RedisError:
        return None


@dataclasses.dataclass(frozen=True)
class PipelineState:
    """How far the stored events reach: what an analysis run now can count."""

    stored_until: datetime | None  # when the last stored batch was written
    batches_waiting: int  # accepted, not yet stored
    oldest_waiting_since: datetime | None


def event_pipeline_state() -> PipelineState:
    # Both read through indexes: the primary key for the last stored batch, the
    # (status, enqueued_at) index for the few pending ones.
    last = (EventBatch.objects.filter(status=EventBatch.Status.DONE).order_by("-id")
            .values_list("processed_at", flat=True).first())
    waiting = EventBatch.objects.filter(status=EventBatch.Status.PENDING).aggregate(n=Count("id"),
                                                                                    oldest=Min("received_at"))
    return PipelineState(stored_until=last, batches_waiting=waiting["n"] or 0, oldest_waiting_since=waiting["oldest"])
