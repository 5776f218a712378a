from django.urls import path

from events.api import views

urlpatterns = [
    path("events", views.EventsView.as_view(), name="events"),
    path("ingestion/stats", views.IngestionStatsView.as_view(), name="ingestion-stats"),
]
