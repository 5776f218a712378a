from django.contrib import admin

from alerts.models import Delivery, Webhook


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ("url", "events", "is_active", "failing", "consecutive_failures", "last_status_code",
                    "last_delivery_at")
    list_filter = ("is_active", "failing")
    exclude = ("secret",)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "event", "channel", "webhook", "recipient", "state", "attempts", "status_code",
                    "created_at")
    list_filter = ("state", "channel", "event")
