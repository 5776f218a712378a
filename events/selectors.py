"""Reads of the event pipeline: the ingestion counters and a user's hidden pins."""

import redis
from django.conf import settings
from django.db.models import Count, Q, Sum

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
