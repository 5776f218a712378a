"""The analysis reads events per user in user order (a merge join with the exposures
and a streaming aggregate, docs/statistics.md); with the type in the index that read
is an index-only scan instead of a heap fetch per event."""

from django.db import migrations

TABLE = "experiments_event"


def forwards(apps, schema_editor):
    pg = schema_editor.connection.vendor == "postgresql"
    schema_editor.execute(f"DROP INDEX IF EXISTS {TABLE}_user_time")
    if pg:
        schema_editor.execute(f"CREATE INDEX {TABLE}_user_time ON {TABLE} (user_id, occurred_at) INCLUDE (type)")
    else:
        schema_editor.execute(f"CREATE INDEX {TABLE}_user_time ON {TABLE} (user_id, occurred_at, type)")


def backwards(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {TABLE}_user_time")
    schema_editor.execute(f"CREATE INDEX {TABLE}_user_time ON {TABLE} (user_id, occurred_at)")


class Migration(migrations.Migration):
    dependencies = [("experiments", "0003_event_partitions_and_schedules")]

    operations = [migrations.RunPython(forwards, backwards)]
