"""Served impressions of an interleaved closeup carry the team that placed the item:
the id of the experiment variant whose ranker picked it (docs/interleaving.md). A
nullable column: every other event has none. ADD COLUMN on the partitioned parent
reaches every day partition on PostgreSQL, and is a plain ALTER on SQLite.

The interleaving credit joins each click to its impression by request id: PostgreSQL
has had a partial index on it since the table was made; SQLite (`make run`) gets one."""

from django.db import migrations, models


def index_requests_on_sqlite(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("CREATE INDEX IF NOT EXISTS experiments_event_request ON experiments_event (request_id) "
                              "WHERE request_id IS NOT NULL")


def drop_sqlite_index(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP INDEX IF EXISTS experiments_event_request")


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0002_periodic_tasks_renamed"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL("ALTER TABLE experiments_event ADD COLUMN team bigint NULL",
                                  "ALTER TABLE experiments_event DROP COLUMN team"),
                migrations.RunPython(index_requests_on_sqlite, drop_sqlite_index),
            ],
            state_operations=[
                migrations.AddField("event", "team", models.BigIntegerField(
                    blank=True, null=True, help_text="interleaving: the variant whose ranker placed the item")),
            ],
        ),
    ]
