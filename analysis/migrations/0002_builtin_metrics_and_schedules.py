from django.db import migrations


def forwards(apps, schema_editor):
    from analysis.builtin_metrics import ensure_builtin_metrics
    from core import schedules

    alias = schema_editor.connection.alias
    ensure_builtin_metrics(apps, using=alias)
    schedules.ensure([job for job in schedules.PERIODIC_JOBS if job.task.startswith("analysis.")], apps, using=alias)


def backwards(apps, schema_editor):
    alias = schema_editor.connection.alias
    apps.get_model("analysis", "Metric").objects.using(alias).filter(is_builtin=True).delete()
    apps.get_model("django_celery_beat", "PeriodicTask").objects.using(alias).filter(
        task="analysis.tasks.analyze_running_experiments").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("analysis", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
