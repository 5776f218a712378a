from datetime import UTC, datetime, timedelta

from django.conf import settings

from events import storage as event_storage
from events.models import HiddenPin


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
    today = today or datetime.now(UTC).date()
    cutoff = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=settings.EVENTS_RETENTION_DAYS)
    return HiddenPin.objects.filter(hidden_at__lt=cutoff).delete()[0]
