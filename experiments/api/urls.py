from django.urls import path

from experiments import rollouts
from experiments.api import views

urlpatterns = [
    path("assignments", views.AssignmentView.as_view(), name="assignments"),
    path("assignments/batch", views.BatchAssignmentView.as_view(), name="assignments-batch"),
    path("layers", views.LayerListCreateView.as_view(), name="layer-list"),
    path("surfaces/<slug:surface>", views.SurfaceView.as_view(), name="surface-detail"),
    path("surfaces/<slug:surface>/holdout", views.HoldoutView.as_view(), name="surface-holdout"),
    path("templates", views.TemplateListView.as_view(), name="template-list"),
    path("templates/<slug:key>", views.TemplateDetailView.as_view(), name="template-detail"),
    path("experiments", views.ExperimentListCreateView.as_view(), name="experiment-list"),
    path("experiments/<slug:key>", views.ExperimentDetailView.as_view(), name="experiment-detail"),
    *[
        path(f"experiments/<slug:key>/{action}", views.ExperimentActionView.as_view(action=action),
             name=f"experiment-{action}")
        for action in ("start", "pause", "stop", "ship")
    ],
    *[
        path(f"experiments/<slug:key>/rollout/{action}", views.RolloutActionView.as_view(action=action),
             name=f"experiment-rollout-{action}")
        for action in rollouts.ACTIONS
    ],
]
