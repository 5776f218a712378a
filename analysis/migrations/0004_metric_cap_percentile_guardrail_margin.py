import django.core.validators
from django.db import migrations, models


def cap_means(apps, schema_editor):
    apps.get_model("analysis", "Metric").objects.filter(kind="mean").update(cap_percentile=99.9)


class Migration(migrations.Migration):
    """Issue 16 points 5 and 6: per-metric capping (winsorization at a pooled percentile)
    and the relative margin of a guardrail's non-inferiority test. Existing metrics take
    the defaults: per-user means capped at the 99.9th percentile (ratios and proportions
    not: their numbers stay the raw events' own), a 2% margin as guardrails."""

    dependencies = [
        ('analysis', '0003_report_phase'),
    ]

    operations = [
        migrations.AddField(
            model_name='metric',
            name='cap_percentile',
            field=models.FloatField(blank=True, default=None, help_text="winsorize each user's counts at this percentile of all users' (above 0), as Statsig does; empty: no cap (the API's default for a mean metric is 99.9). 0/1 values are never capped", null=True, validators=[django.core.validators.MinValueValidator(50.0), django.core.validators.MaxValueValidator(99.999)]),
        ),
        migrations.AddField(
            model_name='metric',
            name='guardrail_margin',
            field=models.FloatField(blank=True, default=0.02, help_text='as a guardrail: how much worse it may get, relative (0.02: 2%), for the non-inferiority test; empty: no such test', null=True, validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)]),
        ),
        migrations.RunPython(cap_means, migrations.RunPython.noop),
    ]
