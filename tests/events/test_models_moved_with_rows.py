"""The event pipeline's models moved from experiments to events with
SeparateDatabaseAndState: a database migrated at the release before the move migrates
forward with every row kept, the periodic jobs renamed and the permissions attached."""

import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE_THE_MOVE = [("experiments", "0005_hidden_pins"), ("contenttypes", "0002_remove_content_type_name")]


def _migrate(targets, state_at):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(state_at).apps


@pytest.mark.django_db(transaction=True)
def test_a_database_from_before_the_move_keeps_every_row():
    # Unapplies events.* and experiments.0006: the schema as the release before had it.
    old = _migrate([("events", None)], state_at=BEFORE_THE_MOVE)
    ContentType = old.get_model("contenttypes", "ContentType")
    EventBatch, DeadLetter = old.get_model("experiments", "EventBatch"), old.get_model("experiments", "DeadLetter")
    HiddenPin, Event = old.get_model("experiments", "HiddenPin"), old.get_model("experiments", "Event")
    PeriodicTask = old.get_model("django_celery_beat", "PeriodicTask")
    IntervalSchedule = old.get_model("django_celery_beat", "IntervalSchedule")

    now = datetime.now(UTC)
    batch = EventBatch.objects.create(status="dead", source="api", n_accepted=1, n_dead=1, attempts=10)
    DeadLetter.objects.create(batch=batch, event={"event_id": "x"}, reason="not stored after 10 attempts")
    HiddenPin.objects.create(user_id="u1", pin_id=7, hidden_at=now)
    event_id = uuid.uuid4()
    Event.objects.create(event_id=event_id, occurred_at=now, user_id="u1", type="hide", pin_id=7, received_at=now)
    batch_type, _ = ContentType.objects.get_or_create(app_label="experiments", model="eventbatch")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.filter(name="Re-enqueue unfinished event batches").delete()
    PeriodicTask.objects.create(name="Re-enqueue unfinished event batches", interval=every_minute,
                                task="experiments.tasks.sweep_event_batches")  # as an admin left it

    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    _migrate(latest, state_at=latest)

    from django.contrib.contenttypes.models import ContentType as CurrentContentType
    from django_celery_beat.models import PeriodicTask as CurrentPeriodicTask

    from events.models import DeadLetter as Moved
    from events.models import Event as MovedEvent
    from events.models import EventBatch as MovedBatch
    from events.models import HiddenPin as MovedHiddenPin

    assert MovedBatch.objects.get(pk=batch.pk).n_dead == 1
    assert Moved.objects.get().batch_id == batch.pk
    assert MovedHiddenPin.objects.filter(user_id="u1", pin_id=7).exists()
    assert MovedEvent.objects.filter(event_id=event_id).count() == 1
    # Permissions and admin history hang on the content type: the same row, relabelled.
    assert CurrentContentType.objects.get_for_model(MovedBatch).pk == batch_type.pk
    sweep = CurrentPeriodicTask.objects.get(name="Re-enqueue unfinished event batches")
    assert sweep.task == "events.tasks.sweep_event_batches"
    assert (sweep.interval.every, sweep.interval.period) == (1, "minutes")  # the admin's edit is kept
