"""The three roles are Django groups whose permissions are derived from the models.

viewer       reads everything in the product apps
experimenter viewer + creates, changes and runs experiments (and runs analyses)
admin        everything in the product apps, plus API keys and users; staff (admin site)
"""

from django.contrib.auth.models import Group, Permission

VIEWER = "viewer"
EXPERIMENTER = "experimenter"
ADMIN = "admin"
ROLES = (VIEWER, EXPERIMENTER, ADMIN)

PRODUCT_APPS = ("experiments", "events", "recommenders", "analysis", "alerts")
EXPERIMENTER_WRITES_APPS = ("experiments", "analysis", "alerts")


def _role_permissions(role: str, using: str):
    perms = Permission.objects.using(using).select_related("content_type")
    product = perms.filter(content_type__app_label__in=PRODUCT_APPS)
    if role == VIEWER:
        return product.filter(codename__startswith="view_")
    if role == EXPERIMENTER:
        writes = product.filter(content_type__app_label__in=EXPERIMENTER_WRITES_APPS).exclude(
            codename__startswith="delete_"
        )
        return product.filter(codename__startswith="view_") | writes
    return perms.filter(content_type__app_label__in=(*PRODUCT_APPS, "accounts", "auth", "authtoken"))


def sync_role_groups(using: str = "default") -> None:
    for role in ROLES:
        group, _ = Group.objects.using(using).get_or_create(name=role)
        group.permissions.set(list(_role_permissions(role, using)))


def assign_role(user, role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    user.groups.set([Group.objects.get(name=role)])
    user.is_staff = role == ADMIN or user.is_superuser
    user.save(update_fields=["is_staff"])


def roles_of(user) -> list[str]:
    if user.is_superuser:
        return [ADMIN]
    return sorted(g.name for g in user.groups.all() if g.name in ROLES)
