"""The ingestion tasks moved from experiments.tasks to events.tasks: the beat rows that
name them follow (their schedules, which an admin may have edited, are kept)."""

from django.db import migrations

RENAMED = {
    "experiments.tasks.sweep_event_batches": "events.tasks.sweep_event_batches",
    "experiments.tasks.maintain_event_partitions": "events.tasks.maintain_event_partitions",
}


def rename(apps, schema_editor, renamed=RENAMED):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for old, new in renamed.items():
        PeriodicTask.objects.using(schema_editor.connection.alias).filter(task=old).update(task=new)


def rename_back(apps, schema_editor):
    rename(apps, schema_editor, {new: old for old, new in RENAMED.items()})


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("experiments", "0003_event_partitions_and_schedules"),
    ]

    operations = [migrations.RunPython(rename, rename_back)]
