from django.contrib import admin

from experiments.models import (
    AuditLog,
    ConfigVersion,
    Experiment,
    Exposure,
    Holdout,
    Layer,
    Phase,
    Rollout,
    Variant,
    VariantServing,
)


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0


class PhaseInline(admin.TabularInline):
    # Read only: phases are what happened; the services open them (docs/assignment.md).
    model = Phase
    extra = 0
    can_delete = False
    readonly_fields = ("number", "started_at", "weights", "traffic_percent", "ramps")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Layer)
class LayerAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "surface", "stage", "created_at")
    search_fields = ("key", "name")

    def get_readonly_fields(self, request, obj=None):
        # The experiments in a layer were validated for its stage (docs/assignment.md).
        if obj is not None and obj.experiments.exists():
            return ("salt", "stage")
        return ("salt",)


@admin.register(Holdout)
class HoldoutAdmin(admin.ModelAdmin):
    """Read-only: starting and ending a holdout creates and stops its measurement, which
    POST/DELETE /api/v1/surfaces/<surface>/holdout do."""

    list_display = ("surface", "percent", "is_active", "created_at", "ended_at", "experiment")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Rollout)
class RolloutAdmin(admin.ModelAdmin):
    list_display = ("experiment", "variant", "stage", "status", "step", "hold_hours", "step_started_at")
    list_filter = ("status", "stage")
    readonly_fields = ("salt", "created_at", "updated_at")


@admin.register(VariantServing)
class VariantServingAdmin(admin.ModelAdmin):
    list_display = ("variant", "day", "requests", "fallbacks")
    list_select_related = ("variant__experiment",)


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "status", "layer", "bucket_start", "bucket_end", "traffic_percent", "owner")
    list_filter = ("status", "surface", "layer")
    search_fields = ("key", "name")
    readonly_fields = ("salt", "allocation", "created_at", "updated_at")
    inlines = [VariantInline, PhaseInline]


@admin.register(Variant)
class VariantAdmin(admin.ModelAdmin):
    list_display = ("__str__", "weight", "is_control")
    list_filter = ("experiment",)


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("experiment", "action", "actor", "at")
    list_filter = ("action",)
    readonly_fields = ("experiment", "actor", "action", "before", "after", "at")


@admin.register(Exposure)
class ExposureAdmin(admin.ModelAdmin):
    list_display = ("experiment", "variant", "user_id", "first_exposed_at", "forced")
    list_filter = ("experiment", "forced")
    search_fields = ("user_id",)
    list_select_related = ("experiment", "variant")


@admin.register(ConfigVersion)
class ConfigVersionAdmin(admin.ModelAdmin):
    list_display = ("version", "changed_at")
