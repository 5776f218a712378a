from django.db import migrations


def forwards(apps, schema_editor):
    from core import schedules
    from events import partitions

    partitions.maintain()
    schedules.ensure([job for job in schedules.PERIODIC_JOBS if job.task.startswith("events.")], apps,
                     using=schema_editor.connection.alias)


def backwards(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task__in=["experiments.tasks.sweep_event_batches",
                                          "experiments.tasks.maintain_event_partitions"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0002_events"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
