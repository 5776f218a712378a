from django.urls import path

from analysis.api import views

urlpatterns = [
    path("recommenders/offline-online", views.OfflineOnlineView.as_view(), name="offline-online"),
    path("metrics", views.MetricListCreateView.as_view(), name="metric-list"),
    path("metrics/<slug:key>", views.MetricDetailView.as_view(), name="metric-detail"),
    path("experiments/<slug:key>/results", views.ResultsView.as_view(), name="experiment-results"),
    path("experiments/<slug:key>/analyze", views.AnalyzeView.as_view(), name="experiment-analyze"),
    path("experiments/<slug:key>/power", views.PowerView.as_view(), name="experiment-power"),
    path("experiments/<slug:key>/reports", views.ReportListView.as_view(), name="experiment-reports"),
    path("experiments/<slug:key>/reports/<int:report_id>", views.ReportDetailView.as_view(),
         name="experiment-report"),
]
