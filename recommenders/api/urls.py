from django.urls import path

from recommenders.api import views

urlpatterns = [
    path("recommenders", views.RecommenderListView.as_view(), name="recommender-list"),
]
