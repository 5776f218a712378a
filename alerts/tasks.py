"""Thin: one delivery attempt by id, and the sweep of due retries."""

from celery import shared_task

from alerts import services


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=30, time_limit=40)
def deliver(delivery_id: str) -> str | None:
    delivery = services.attempt(delivery_id)
    return delivery.state if delivery else None


@shared_task(acks_late=True, reject_on_worker_lost=True)
def sweep_deliveries() -> int:
    return len(services.sweep())
