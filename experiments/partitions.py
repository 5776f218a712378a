from datetime import UTC, datetime, timedelta

from django.conf import settings

from experiments import event_storage


def maintain(today=None) -> dict:
    """Create the partitions events may land in (the accepted past window and the
    days ahead) and drop the days older than the retention period."""
    today = today or datetime.now(UTC).date()
    days = [today + timedelta(days=d)
            for d in range(-settings.EVENTS_MAX_AGE_DAYS, settings.EVENTS_PARTITIONS_AHEAD_DAYS + 1)]
    created = event_storage.ensure_partitions(days)
    dropped = event_storage.drop_partitions_before(today - timedelta(days=settings.EVENTS_RETENTION_DAYS))
    return {"created": created, "dropped": dropped}


def prune_hidden_pins(today=None) -> int:
    """Hides older than the events' retention go with them (user data is kept no longer)."""
    from experiments.models import HiddenPin

    today = today or datetime.now(UTC).date()
    cutoff = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=settings.EVENTS_RETENTION_DAYS)
    return HiddenPin.objects.filter(hidden_at__lt=cutoff).delete()[0]


def ensure_schedules(apps=None) -> None:
    """The periodic tasks of ingestion, as django-celery-beat rows an admin may edit."""
    if apps is None:
        from django_celery_beat.models import IntervalSchedule, PeriodicTask
    else:
        IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_10s, _ = IntervalSchedule.objects.get_or_create(every=10, period="seconds")
    hourly, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    PeriodicTask.objects.get_or_create(
        name="Re-enqueue unfinished event batches",
        defaults={"task": "experiments.tasks.sweep_event_batches", "interval": every_10s},
    )
    PeriodicTask.objects.get_or_create(
        name="Create and drop event partitions",
        defaults={"task": "experiments.tasks.maintain_event_partitions", "interval": hourly},
    )
