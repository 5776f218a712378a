from django.apps import AppConfig
from django.db.models.signals import post_migrate

from analysis.builtin_metrics import ensure_builtin_metrics
from experiments import references


class AnalysisConfig(AppConfig):
    name = "analysis"

    def ready(self):
        # The built-in metrics are there after every migrate
        # (and every flush, which re-sends post_migrate), not only after migration 0002.
        post_migrate.connect(_ensure_builtins, sender=self, dispatch_uid="analysis.ensure_builtins")
        # Experiments name their metrics: experiments checks them through this.
        references.register_metric_lookup(_existing_metrics)


def _existing_metrics(keys) -> set[str]:
    from analysis.models import Metric  # apps.py is imported before models may be


    return set(Metric.objects.filter(key__in=list(keys)).values_list("key", flat=True))


def _ensure_builtins(sender, using="default", apps=None, **kwargs):
    if apps is not None:
        try:
            apps.get_model("analysis", "Metric")
        except LookupError:
            return  # migrating backwards, or not yet that far
    ensure_builtin_metrics(apps, using=using)
