from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.views import RateLimitedLoginView
from core import views as core_views

api_v1 = [
    path("", include("accounts.api.urls")),
    path("", include("core.api.urls")),
    path("", include("experiments.api.urls")),
    path("", include("events.api.urls")),
    path("", include("serving.api.urls")),
    path("", include("recommenders.api.urls")),
    path("", include("analysis.api.urls")),
    path("", include("alerts.api.urls")),
]

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("login/", RateLimitedLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/", include(api_v1)),
    # Anything else under /api/ is a JSON 404, in DEBUG too.
    re_path(r"^api/", core_views.api_not_found),
    path("", include("dashboard.urls")),
]

handler403 = "core.views.permission_denied"
handler404 = "core.views.not_found"
handler500 = "core.views.server_error"
