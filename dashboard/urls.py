from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.experiment_list, name="experiment-list"),
    path("experiments/new", views.experiment_create, name="experiment-create"),
    path("layers/new", views.layer_create, name="layer-create"),
    path("experiments/<slug:key>/", views.experiment_detail, name="experiment-detail"),
    path("experiments/<slug:key>/update", views.experiment_update, name="experiment-update"),
    path("experiments/<slug:key>/rollout/<slug:action>", views.experiment_rollout, name="experiment-rollout"),
    path("experiments/<slug:key>/results", views.experiment_results, name="experiment-results"),
    path("experiments/<slug:key>/analyze", views.experiment_analyze, name="experiment-analyze"),
    path("experiments/<slug:key>/<slug:action>", views.experiment_action, name="experiment-action"),
    path("recommenders", views.recommenders_page, name="recommenders"),
    path("alerts", views.alerts_page, name="alerts"),
    path("recommenders/offline-online", views.offline_online_page, name="offline-online"),
    path("surfaces/<slug:surface>", views.surface_page, name="surface"),
]
