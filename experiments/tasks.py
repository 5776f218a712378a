from celery import shared_task
from django.db import InterfaceError, OperationalError

from experiments import rollouts, services

# Idempotent tasks that retry only while the database is unreachable, with backoff.
DATABASE_TASK = {"acks_late": True, "reject_on_worker_lost": True, "autoretry_for": (OperationalError, InterfaceError),
                 "retry_backoff": True, "retry_backoff_max": 60, "max_retries": 8}


@shared_task(**DATABASE_TASK)
def record_exposures(rows: list[dict]) -> int:
    """Write one batch of exposures; idempotent, so redelivery is harmless. Serving
    processes now write exposures themselves (experiments/exposures.py); the task stays
    so that batches an older release left in the queue are still written."""
    return services.record_exposures(rows)


@shared_task(**DATABASE_TASK)
def advance_rollouts() -> int:
    """Step up every rollout whose step has been held long enough. Idempotent: a step
    moves only once its hold is over, under a row lock."""
    return rollouts.advance_due()
