from rest_framework import permissions

from accounts.authentication import ApiClient


class HasApiKey(permissions.BasePermission):
    """Client endpoints: a valid `Authorization: Api-Key` and nothing else."""

    message = "A valid API key is required (Authorization: Api-Key <key>)."

    def has_permission(self, request, view):
        return isinstance(request.auth, ApiClient)


class RolePermission(permissions.DjangoModelPermissions):
    """Management endpoints: a logged-in user whose role grants the model permission.

    Reads need the `view` permission (DRF's default lets any user read); API keys
    never pass, they are for client endpoints only.
    """

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request, view):
        user = request.user
        if user is None or isinstance(user, ApiClient) or not user.is_authenticated:
            return False
        required = getattr(view, "required_permissions", None)
        if required is not None:
            return user.has_perms(required)
        if getattr(view, "queryset", None) is None and not hasattr(view, "get_queryset"):
            # A management view with no model behind it: any logged-in user.
            return True
        return super().has_permission(request, view)


class IsLoggedIn(permissions.BasePermission):
    def has_permission(self, request, view):
        user = request.user
        return user is not None and not isinstance(user, ApiClient) and user.is_authenticated
