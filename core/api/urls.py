from django.urls import path

from core.api import views

urlpatterns = [
    path("ping", views.ping, name="ping"),
]
