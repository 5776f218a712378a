from django.urls import path

from alerts.api import views

urlpatterns = [
    path("webhooks", views.WebhookListView.as_view(), name="webhook-list"),
    path("webhooks/<int:pk>", views.WebhookDetailView.as_view(), name="webhook-detail"),
    path("webhooks/<int:pk>/deliveries", views.DeliveryListView.as_view(), name="webhook-deliveries"),
]
