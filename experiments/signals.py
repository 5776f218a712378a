"""Every save of what assignment reads bumps the configuration version, in the
saving transaction: the services and the admin site alike reach serving processes."""

from django.db.models.signals import post_delete, post_save

from experiments.models import Experiment, Holdout, Layer, Rollout, SurfaceDefault, Variant
from experiments.services import bump_config_version


def _bump(sender, **kwargs):
    bump_config_version()


def connect():
    for model in (Experiment, Variant, Layer, Holdout, SurfaceDefault, Rollout):
        post_save.connect(_bump, sender=model, dispatch_uid=f"bump-config-{model.__name__}-save")
        post_delete.connect(_bump, sender=model, dispatch_uid=f"bump-config-{model.__name__}-delete")
