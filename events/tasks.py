"""The event pipeline's Celery tasks: thin, idempotent, by id."""

from celery import shared_task

from events import ingestion, partitions


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=8)
def ingest_batch(self, batch_id: int) -> int:
    """Store one inbox batch. Idempotent: delivering it twice stores it once."""
    try:
        batch = ingestion.store_batch(batch_id)
    except ingestion.TRANSIENT as exc:
        ingestion.record_failure(batch_id, exc)
        # Exponential backoff; the sweep also re-enqueues it if these retries run out.
        raise self.retry(exc=exc, countdown=min(60, 2 ** self.request.retries)) from exc
    return batch.n_inserted if batch else 0


@shared_task(acks_late=True, reject_on_worker_lost=True)
def sweep_event_batches() -> dict:
    result = ingestion.sweep()
    return {"requeued": len(result["requeued"]), "dead": len(result["dead"])}


@shared_task(acks_late=True, reject_on_worker_lost=True)
def maintain_event_partitions() -> dict:
    return {**partitions.maintain(), "hidden_pins_pruned": partitions.prune_hidden_pins()}
