from django.urls import path

from serving.api import views

urlpatterns = [
    path("closeup/<int:pin_id>", views.CloseupView.as_view(), name="closeup"),
]
