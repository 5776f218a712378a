from celery import shared_task

from recommenders import services


# A build can take minutes: past the default limits, and longer than the Redis
# visibility timeout; run it where workers have a visibility timeout above its limit
# (docs/operations.md). It is idempotent: a second run builds another version.
@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=1800, time_limit=1900)
def build_recommenders(names: list[str] | None = None) -> str:
    return services.build_all(names)[0].version
