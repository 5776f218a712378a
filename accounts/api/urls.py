from django.urls import path

from accounts.api import views

urlpatterns = [
    path("me", views.MeView.as_view(), name="me"),
    path("api-keys", views.ApiKeyListCreateView.as_view(), name="api-key-list"),
    path("api-keys/<str:prefix>/revoke", views.ApiKeyRevokeView.as_view(), name="api-key-revoke"),
]
