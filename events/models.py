"""The event pipeline's tables. They were created by the experiments app and keep its
table names (experiments_event, experiments_eventbatch, experiments_deadletter,
experiments_hiddenpin): the models moved here with SeparateDatabaseAndState, the rows
never moved (migrations/0001_initial.py)."""

from django.db import models

from events.validation import EVENT_TYPES


class Event(models.Model):
    """One impression or engagement. On PostgreSQL the table is partitioned by day of
    `occurred_at` (see migrations/0002 and event_storage.py); the primary key includes
    the partition key, so idempotency is on (event_id, occurred_at): a client that
    retries sends the same event with the same timestamp."""

    pk = models.CompositePrimaryKey("event_id", "occurred_at")
    event_id = models.UUIDField()
    occurred_at = models.DateTimeField()
    user_id = models.CharField(max_length=255)
    type = models.CharField(max_length=16, choices=[(t, t) for t in EVENT_TYPES])
    pin_id = models.BigIntegerField()
    request_id = models.UUIDField(null=True, blank=True)
    position = models.IntegerField(null=True, blank=True)
    # A served impression of an interleaved list: the id of the variant whose ranker placed the item.
    team = models.BigIntegerField(null=True, blank=True)
    # What the client measured (dwell time in ms, watch time) and a few scalars to filter on (platform).
    value = models.FloatField(null=True, blank=True)
    properties = models.JSONField(null=True, blank=True)
    batch_id = models.BigIntegerField(null=True, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        managed = False  # created by experiments' migration 0002 with vendor-specific SQL (events/storage.py)
        db_table = "experiments_event"

    def __str__(self):
        return f"{self.type} {self.event_id}"


class EventBatch(models.Model):
    """The inbox: each accepted batch is written here in one insert before the API
    answers 202, so that accepted means durable whatever happens to the broker. A
    worker stores the batch's events and marks it done in one transaction."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        DEAD = "dead"

    received_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    payload = models.BinaryField(null=True, help_text="accepted events as JSON; cleared once stored")
    source = models.CharField(max_length=32, default="api")
    n_accepted = models.IntegerField()
    n_rejected = models.IntegerField(default=0)
    n_duplicates_in_request = models.IntegerField(default=0)
    n_inserted = models.IntegerField(null=True)
    n_duplicates = models.IntegerField(null=True)
    n_dead = models.IntegerField(null=True)
    attempts = models.IntegerField(default=0)
    enqueued_at = models.DateTimeField(null=True)
    processed_at = models.DateTimeField(null=True)
    error = models.TextField(blank=True)

    class Meta:
        db_table = "experiments_eventbatch"
        indexes = [
            models.Index(fields=["status", "enqueued_at"], name="eventbatch_pending_idx",
                         condition=models.Q(status="pending")),
        ]

    def __str__(self):
        return f"batch {self.pk} ({self.status}, {self.n_accepted} events)"


class DeadLetter(models.Model):
    """An accepted event that could not be stored, with the reason; replayable with
    `manage.py replay_dead_letters`."""

    batch = models.ForeignKey(EventBatch, null=True, on_delete=models.SET_NULL)
    event = models.JSONField()
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "experiments_deadletter"
        ordering = ["-created_at"]

    def __str__(self):
        return f"dead letter {self.pk}: {self.reason[:60]}"


class HiddenPin(models.Model):
    """A pin a user hid, read on every closeup request to keep it out of the grid.
    Written with the hide events, in the same transaction. The events table is
    partitioned by day and keeps EVENTS_RETENTION_DAYS of them, and a lookup by user
    there is planned against every partition: a closeup paid 3 ms for 15 partitions and
    would pay for 400. Here it is one index probe."""

    user_id = models.CharField(max_length=255)
    pin_id = models.BigIntegerField()
    hidden_at = models.DateTimeField()

    class Meta:
        db_table = "experiments_hiddenpin"
        constraints = [models.UniqueConstraint(fields=["user_id", "pin_id"], name="hiddenpin_user_pin_unique")]

    def __str__(self):
        return f"{self.user_id} hid {self.pin_id}"
