from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AnalysisConfig(AppConfig):
    name = "analysis"

    def ready(self):
        # The built-in metrics and the analysis schedules are there after every migrate
        # (and every flush, which re-sends post_migrate), not only after migration 0002.
        post_migrate.connect(_ensure_builtins, sender=self, dispatch_uid="analysis.ensure_builtins")


def _ensure_builtins(sender, using="default", apps=None, **kwargs):
    from analysis.builtin_metrics import ensure_builtin_metrics
    from analysis.schedules import ensure_schedules

    if apps is not None:
        try:
            apps.get_model("analysis", "Metric")
            apps.get_model("django_celery_beat", "PeriodicTask")
        except LookupError:
            return  # migrating backwards, or not yet that far
    ensure_builtin_metrics(apps, using=using)
    ensure_schedules(apps, using=using)
