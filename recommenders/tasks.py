from celery import shared_task
from django.conf import settings

from recommenders import jobs, retraining

# Builds run on settings.BUILD_QUEUE (core.routing), on a worker whose limits fit them
# (docs/operations.md). Idempotent by the job row: a second delivery of a running job
# finds it taken and returns.
_LIMITS = {"soft_time_limit": settings.BUILD_TASK_TIME_LIMIT, "time_limit": settings.BUILD_TASK_TIME_LIMIT + 300}


@shared_task(acks_late=True, reject_on_worker_lost=True, **_LIMITS)
def run_build_job(job_id: int) -> str | None:
    job = jobs.run(job_id)
    return job.version if job else None


@shared_task(acks_late=True, reject_on_worker_lost=True, **_LIMITS)
def retrain_recommenders() -> int | None:
    """The daily retrain (beat): one retrain job per day, run here."""
    job = retraining.schedule_daily()
    if job is not None:
        jobs.run(job.pk)
    return job.pk if job else None


@shared_task(acks_late=True, reject_on_worker_lost=True)
def sweep_build_jobs() -> list[int]:
    return jobs.sweep()
