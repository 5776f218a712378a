from django.contrib import admin

from events.ingestion import replay_dead_letters
from events.models import DeadLetter, EventBatch


@admin.register(EventBatch)
class EventBatchAdmin(admin.ModelAdmin):
    list_display = ("id", "received_at", "status", "source", "n_accepted", "n_inserted", "n_duplicates", "n_rejected",
                    "n_dead", "attempts")
    list_filter = ("status", "source")
    exclude = ("payload",)
    readonly_fields = [f.name for f in EventBatch._meta.fields if f.name != "payload"]


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "reason", "replayed_at", "batch")
    list_filter = ("replayed_at",)
    readonly_fields = ("batch", "event", "reason", "created_at", "replayed_at")
    actions = ["replay"]

    @admin.action(description="Replay selected dead letters")
    def replay(self, request, queryset):
        replayed, invalid = replay_dead_letters([d.id for d in queryset])
        self.message_user(request, f"Replayed {replayed} events; {invalid} are still invalid.")
