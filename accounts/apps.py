from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self):
        # In ready(): registers the API key scheme with drf-spectacular, which needs the apps loaded.
        from accounts import schema  # noqa: F401

        # After every migrate, so models added by later migrations get their role grants.
        post_migrate.connect(_sync_roles, dispatch_uid="accounts.sync_roles")


def _sync_roles(sender, **kwargs):
    from accounts.roles import sync_role_groups  # imports the models: not at apps.py's load

    sync_role_groups(using=kwargs.get("using", "default"))
