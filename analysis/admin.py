from django.contrib import admin

from analysis.models import AnalysisReport, Metric


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "kind", "aggregation", "direction", "is_guardrail", "window_hours",
                    "cuped_pre_period_days", "cap_percentile", "guardrail_margin", "min_users_per_variant",
                    "min_events_per_variant", "is_builtin"]
    list_filter = ["kind", "is_guardrail", "is_builtin"]
    search_fields = ["key", "name"]


@admin.register(AnalysisReport)
class AnalysisReportAdmin(admin.ModelAdmin):
    list_display = ["id", "experiment", "status", "trigger", "computed_at", "duration_ms", "error"]
    list_filter = ["status", "trigger"]
    search_fields = ["experiment__key"]
    readonly_fields = [f.name for f in AnalysisReport._meta.fields]

    def has_add_permission(self, request):
        return False
