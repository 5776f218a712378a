"""Served impressions of an interleaved closeup carry the team that placed the item:
the id of the experiment variant whose ranker picked it (docs/interleaving.md). A
nullable column: every other event has none. ADD COLUMN on the partitioned parent
reaches every day partition on PostgreSQL, and is a plain ALTER on SQLite."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0002_periodic_tasks_renamed"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL("ALTER TABLE experiments_event ADD COLUMN team bigint NULL",
                                  "ALTER TABLE experiments_event DROP COLUMN team"),
            ],
            state_operations=[
                migrations.AddField("event", "team", models.BigIntegerField(
                    blank=True, null=True, help_text="interleaving: the variant whose ranker placed the item")),
            ],
        ),
    ]
