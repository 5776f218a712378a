"""Build jobs: a build or a retrain runs on the builds queue under a BuildJob row that
says what it is doing, how far it got and how it ended.

Redelivery is the row's business, not the broker's: Redis hands an unacknowledged
message out again after CELERY_VISIBILITY_TIMEOUT (seconds), far below a build's
minutes, so a second delivery of a job that is running finds its heartbeat fresh and
leaves it alone; a job whose heartbeat went silent (its worker died) is queued again
by the sweep, up to BUILD_MAX_ATTEMPTS."""

from __future__ import annotations

import logging
import threading
import traceback
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from recommenders.models import BuildJob

logger = logging.getLogger(__name__)


RUN_TASK = "recommenders.tasks.run_build_job"


def send(job_id: int) -> None:
    """Publish the job's task by name (core.routing puts it on the builds queue)."""
    from celery import current_app

    current_app.send_task(RUN_TASK, args=[job_id])


def enqueue(kind: str = BuildJob.Kind.BUILD, names: list[str] | None = None) -> BuildJob:
    from recommenders import registry

    names = list(names or [])
    unknown = sorted(set(names) - set(registry.names()))
    if unknown:
        raise ValueError(f"Unknown recommenders: {', '.join(unknown)}; registered: {', '.join(registry.names())}.")
    job = BuildJob.objects.create(kind=kind, names=names)
    transaction.on_commit(lambda: send(job.pk))
    return job


def _stale_before():
    return timezone.now() - timedelta(seconds=settings.BUILD_STALE_SECONDS)


def claim(job_id: int) -> BuildJob | None:
    """Take the job if it is queued, or running with a silent heartbeat; None if another
    worker has it or it has ended (a duplicate delivery)."""
    now = timezone.now()
    taken = BuildJob.objects.filter(
        Q(state=BuildJob.State.QUEUED) | Q(state=BuildJob.State.RUNNING, heartbeat_at__lt=_stale_before()),
        pk=job_id,
    ).update(state=BuildJob.State.RUNNING, started_at=now, heartbeat_at=now, finished_at=None, error="",
             steps_done=0)
    return BuildJob.objects.get(pk=job_id) if taken else None


class Progress:
    """What the job is doing, written to its row as it goes; the heartbeat is written
    from a thread of its own, since one model's fit can take longer than the stale limit."""

    def __init__(self, job: BuildJob, echo=None):
        self.job = job
        self.echo = echo  # called with the job after each change (a command's progress bar)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"build-job-{job.pk}-heartbeat", daemon=True)

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        from django.db import connection

        try:
            while not self._stop.wait(settings.BUILD_HEARTBEAT_SECONDS):
                BuildJob.objects.filter(pk=self.job.pk).update(heartbeat_at=timezone.now())
        finally:
            connection.close()

    def total(self, steps: int) -> None:
        self.job.steps_total = steps
        BuildJob.objects.filter(pk=self.job.pk).update(steps_total=steps)
        self._echo()

    def doing(self, what: str) -> None:
        self.job.step = what[:200]
        BuildJob.objects.filter(pk=self.job.pk).update(step=self.job.step, heartbeat_at=timezone.now())
        self._echo()

    def done(self, what: str) -> None:
        self.job.steps_done += 1
        self.job.step = what[:200]
        BuildJob.objects.filter(pk=self.job.pk).update(steps_done=self.job.steps_done, step=self.job.step,
                                                       heartbeat_at=timezone.now())
        self._echo()

    def _echo(self) -> None:
        if self.echo:
            self.echo(self.job)


def run(job_id: int, echo=None) -> BuildJob | None:
    """Run a queued job to its end; idempotent (a second delivery does nothing)."""
    from recommenders import retraining, services

    job = claim(job_id)
    if job is None:
        return None
    BuildJob.objects.filter(pk=job.pk).update(attempts=job.attempts + 1)
    try:
        with Progress(job, echo) as progress:
            if job.kind == BuildJob.Kind.RETRAIN:
                summary = retraining.retrain(job=job, progress=progress)
                version = summary.get("version", "")
            else:
                from recommenders import registry

                names = job.names or registry.names()
                progress.total(len(names) + 1)
                rows = services.build_all(names, job=job, progress=lambda name: progress.done(f"built {name}"))
                version, summary = rows[0].version, {"built": [r.name for r in rows]}
    except Exception as exc:
        logger.exception("build job %s failed", job.pk)
        BuildJob.objects.filter(pk=job.pk).update(
            state=BuildJob.State.FAILED, finished_at=timezone.now(), step="failed",
            error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"[:5000])
        raise
    BuildJob.objects.filter(pk=job.pk).update(state=BuildJob.State.SUCCEEDED, finished_at=timezone.now(),
                                              version=version, summary=summary, step="done")
    return BuildJob.objects.get(pk=job.pk)


def sweep() -> list[int]:
    """Queue again the jobs whose worker died (heartbeat silent past BUILD_STALE_SECONDS),
    and fail those that died BUILD_MAX_ATTEMPTS times."""
    requeued = []
    stale = BuildJob.objects.filter(state=BuildJob.State.RUNNING, heartbeat_at__lt=_stale_before())
    for job in stale:
        if job.attempts >= settings.BUILD_MAX_ATTEMPTS:
            BuildJob.objects.filter(pk=job.pk, state=BuildJob.State.RUNNING).update(
                state=BuildJob.State.FAILED, finished_at=timezone.now(), step="failed",
                error=f"its worker stopped answering {job.attempts} times (killed, out of memory or past "
                      f"BUILD_TASK_TIME_LIMIT); see the builds worker's log")
            continue
        if BuildJob.objects.filter(pk=job.pk, state=BuildJob.State.RUNNING, heartbeat_at__lt=_stale_before()).update(
                state=BuildJob.State.QUEUED, step=f"queued again after its worker stopped answering "
                                                  f"(attempt {job.attempts + 1})"):
            send(job.pk)
            requeued.append(job.pk)
    return requeued
