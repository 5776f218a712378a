from alerts.models import Delivery, Webhook


def webhooks() -> list[Webhook]:
    return list(Webhook.objects.select_related("owner").order_by("-created_at", "-id"))


def deliveries(webhook: Webhook | None = None, limit: int = 100) -> list[Delivery]:
    rows = Delivery.objects.select_related("webhook").order_by("-created_at")
    if webhook is not None:
        rows = rows.filter(webhook=webhook)
    return list(rows[:limit])
