from django.apps import AppConfig
from django.db.models.signals import post_migrate

from core import schedules


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Pinpoint core"

    def ready(self):
        # The periodic jobs are there after every migrate (and every flush, which re-sends
        # post_migrate), not only after the migration that first made them.
        post_migrate.connect(_ensure_periodic_jobs, dispatch_uid="core.ensure_periodic_jobs")


def _ensure_periodic_jobs(sender, using="default", apps=None, **kwargs):
    # post_migrate is sent once per app with models (core has none): act on beat's own.
    if sender.label != "django_celery_beat":
        return
    if apps is not None:
        try:
            apps.get_model("django_celery_beat", "PeriodicTask")
        except LookupError:
            return  # migrating backwards, or not yet that far
    from django.conf import settings

    schedules.ensure(apps=apps, using=using, settings=settings)
