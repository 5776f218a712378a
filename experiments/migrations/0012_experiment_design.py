from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0011_exposure_other_variant"),
    ]

    operations = [
        migrations.AddField(
            model_name="experiment",
            name="design",
            field=models.CharField(choices=[("ab", "A/B test"), ("interleaving", "Interleaving")], default="ab",
                                   max_length=16),
        ),
    ]
