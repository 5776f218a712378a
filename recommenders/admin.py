from django.contrib import admin

from recommenders.models import Board, ModelVersion, Pin


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
    list_display = ("name", "version", "is_active", "build_seconds", "size_bytes", "built_at")
    list_filter = ("name", "is_active")
