"""The event pipeline's models move here from experiments. State only: the tables keep
their names and rows (experiments_event, _eventbatch, _deadletter, _hiddenpin); the
content types move with them, so permissions and admin history stay attached."""

import django.db.models.deletion
from django.db import migrations, models

MOVED = ("event", "eventbatch", "deadletter", "hiddenpin")


def _relabel(apps, schema_editor, source: str, target: str):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MOVED:
        if not ContentType.objects.using(db).filter(app_label=target, model=model).exists():
            ContentType.objects.using(db).filter(app_label=source, model=model).update(app_label=target)


def move_content_types(apps, schema_editor):
    _relabel(apps, schema_editor, "experiments", "events")


def move_content_types_back(apps, schema_editor):
    _relabel(apps, schema_editor, "events", "experiments")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("experiments", "0005_hidden_pins"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Event",
                    fields=[
                        ("pk", models.CompositePrimaryKey("event_id", "occurred_at", blank=True, editable=False,
                                                          primary_key=True, serialize=False)),
                        ("event_id", models.UUIDField()),
                        ("occurred_at", models.DateTimeField()),
                        ("user_id", models.CharField(max_length=255)),
                        ("type", models.CharField(choices=[("impression", "impression"), ("click", "click"),
                                                           ("save", "save"), ("closeup", "closeup"),
                                                           ("hide", "hide")], max_length=16)),
                        ("pin_id", models.BigIntegerField()),
                        ("request_id", models.UUIDField(blank=True, null=True)),
                        ("position", models.IntegerField(blank=True, null=True)),
                        ("batch_id", models.BigIntegerField(blank=True, null=True)),
                        ("received_at", models.DateTimeField()),
                    ],
                    options={"db_table": "experiments_event", "managed": False},
                ),
                migrations.CreateModel(
                    name="EventBatch",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("received_at", models.DateTimeField(auto_now_add=True)),
                        ("status", models.CharField(choices=[("pending", "Pending"), ("done", "Done"),
                                                             ("dead", "Dead")], default="pending", max_length=8)),
                        ("payload", models.BinaryField(help_text="accepted events as JSON; cleared once stored",
                                                       null=True)),
                        ("source", models.CharField(default="api", max_length=32)),
                        ("n_accepted", models.IntegerField()),
                        ("n_rejected", models.IntegerField(default=0)),
                        ("n_duplicates_in_request", models.IntegerField(default=0)),
                        ("n_inserted", models.IntegerField(null=True)),
                        ("n_duplicates", models.IntegerField(null=True)),
                        ("n_dead", models.IntegerField(null=True)),
                        ("attempts", models.IntegerField(default=0)),
                        ("enqueued_at", models.DateTimeField(null=True)),
                        ("processed_at", models.DateTimeField(null=True)),
                        ("error", models.TextField(blank=True)),
                    ],
                    options={
                        "db_table": "experiments_eventbatch",
                        "indexes": [models.Index(condition=models.Q(("status", "pending")),
                                                 fields=["status", "enqueued_at"], name="eventbatch_pending_idx")],
                    },
                ),
                migrations.CreateModel(
                    name="DeadLetter",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("event", models.JSONField()),
                        ("reason", models.TextField()),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("replayed_at", models.DateTimeField(blank=True, null=True)),
                        ("batch", models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL,
                                                    to="events.eventbatch")),
                    ],
                    options={"db_table": "experiments_deadletter", "ordering": ["-created_at"]},
                ),
                migrations.CreateModel(
                    name="HiddenPin",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("user_id", models.CharField(max_length=255)),
                        ("pin_id", models.BigIntegerField()),
                        ("hidden_at", models.DateTimeField()),
                    ],
                    options={
                        "db_table": "experiments_hiddenpin",
                        "constraints": [models.UniqueConstraint(fields=("user_id", "pin_id"),
                                                                name="hiddenpin_user_pin_unique")],
                    },
                ),
            ],
            database_operations=[migrations.RunPython(move_content_types, move_content_types_back)],
        ),
    ]
