"""Who may change an experiment: its owner or an admin. One rule for the API and the
dashboard, so a page never offers what the API would refuse."""

from rest_framework import permissions

from accounts.roles import ADMIN, roles_of


def owns_or_admin(user, experiment) -> bool:
    return user.is_superuser or experiment.owner_id == user.id or ADMIN in roles_of(user)


class AdminOnly(permissions.BasePermission):
    message = "Only an admin may change this."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and (user.is_superuser or ADMIN in roles_of(user)))


class OwnerOrAdminWrites(permissions.BasePermission):
    """Experimenters change only their own experiments; admins change any."""

    message = "Only the experiment's owner or an admin may change it."

    def has_object_permission(self, request, view, obj):
        return request.method in permissions.SAFE_METHODS or owns_or_admin(request.user, obj)
