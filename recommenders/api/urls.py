from django.urls import path

from recommenders.api import views

urlpatterns = [
    path("recommenders", views.RecommenderListView.as_view(), name="recommender-list"),
    path("recommenders/builds", views.BuildJobListView.as_view(), name="build-job-list"),
    path("recommenders/builds/<int:pk>", views.BuildJobDetailView.as_view(), name="build-job-detail"),
    path("surfaces/<slug:surface>/retrain", views.RetrainPolicyView.as_view(), name="surface-retrain"),
]
