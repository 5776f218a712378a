"""The event pipeline's models now live in the events app (events/migrations/0001):
state only, the tables and rows stay."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0005_hidden_pins"),
        ("events", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="DeadLetter"),
                migrations.DeleteModel(name="EventBatch"),
                migrations.DeleteModel(name="Event"),
                migrations.DeleteModel(name="HiddenPin"),
            ],
            database_operations=[],
        ),
    ]
