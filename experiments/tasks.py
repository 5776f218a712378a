from celery import shared_task
from django.db import InterfaceError, OperationalError

from experiments import services


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=8,
)
def record_exposures(rows: list[dict]) -> int:
    """Write one batch of exposures; idempotent, so redelivery is harmless. Serving
    processes now write exposures themselves (experiments/exposures.py); the task stays
    so that batches an older release left in the queue are still written."""
    return services.record_exposures(rows)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=8)
def ingest_batch(self, batch_id: int) -> int:
    """Store one inbox batch. Idempotent: delivering it twice stores it once."""
    from experiments import ingestion

    try:
        batch = ingestion.store_batch(batch_id)
    except ingestion.TRANSIENT as exc:
        ingestion.record_failure(batch_id, exc)
        # Exponential backoff; the sweep also re-enqueues it if these retries run out.
        raise self.retry(exc=exc, countdown=min(60, 2 ** self.request.retries)) from exc
    return batch.n_inserted if batch else 0


@shared_task(acks_late=True, reject_on_worker_lost=True)
def sweep_event_batches() -> dict:
    from experiments import ingestion

    result = ingestion.sweep()
    return {"requeued": len(result["requeued"]), "dead": len(result["dead"])}


@shared_task(acks_late=True, reject_on_worker_lost=True)
def maintain_event_partitions() -> dict:
    from experiments import partitions

    return {**partitions.maintain(), "hidden_pins_pruned": partitions.prune_hidden_pins()}
