from django.contrib import admin

from recommenders.models import Board, BuildJob, ModelVersion, Pin, RetrainPolicy


@admin.register(Pin)
class PinAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "topic", "created_at")
    search_fields = ("title",)


@admin.register(Board)
class BoardAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "owner", "topic")
    search_fields = ("name", "owner")


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "is_active", "servable", "build_seconds", "size_bytes", "built_at")
    list_filter = ("name", "is_active", "servable")


@admin.register(BuildJob)
class BuildJobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "state", "steps_done", "steps_total", "step", "version", "created_at", "finished_at")
    list_filter = ("kind", "state")


@admin.register(RetrainPolicy)
class RetrainPolicyAdmin(admin.ModelAdmin):
    list_display = ("surface", "auto_experiment", "design", "traffic_percent", "updated_at")
