"""Events may carry a numeric value (dwell time, watch time) and properties (a flat
object of scalars to filter on). Two nullable columns without a default: on
PostgreSQL ADD COLUMN on the partitioned parent reaches every day partition and
rewrites no row; SQLite adds one column per ALTER. Every stored row is kept."""

from django.db import migrations, models


def add_columns(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE experiments_event ADD COLUMN value double precision NULL, "
                              "ADD COLUMN properties jsonb NULL")
    else:
        schema_editor.execute("ALTER TABLE experiments_event ADD COLUMN value real NULL")
        schema_editor.execute("ALTER TABLE experiments_event ADD COLUMN properties text NULL")


def drop_columns(apps, schema_editor):
    schema_editor.execute("ALTER TABLE experiments_event DROP COLUMN properties")
    schema_editor.execute("ALTER TABLE experiments_event DROP COLUMN value")


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0003_event_team"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(add_columns, drop_columns)],
            state_operations=[
                migrations.AddField("event", "value", models.FloatField(blank=True, null=True)),
                migrations.AddField("event", "properties", models.JSONField(blank=True, null=True)),
            ],
        ),
    ]
