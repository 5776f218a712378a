from django.contrib import admin, messages

from accounts.models import ApiKey
from accounts.services import create_api_key, revoke_api_key


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "created_at", "revoked_at", "is_active")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix")
    readonly_fields = ("prefix", "created_at", "revoked_at")
    fields = ("name", "prefix", "created_at", "revoked_at")
    actions = ["revoke"]

    @admin.display(boolean=True)
    def is_active(self, obj):
        return obj.is_active

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = create_api_key(obj.name)
        obj.pk, obj.prefix, obj.hashed_key = issued.api_key.pk, issued.api_key.prefix, issued.api_key.hashed_key
        obj.created_at = issued.api_key.created_at
        messages.warning(request, f"API key for {obj.name}, shown only now: {issued.key}")

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request, queryset):
        for api_key in queryset:
            revoke_api_key(api_key)
        self.message_user(request, f"Revoked {queryset.count()} key(s); they stop working within seconds.")
