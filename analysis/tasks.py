from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from analysis import services
from experiments.models import Experiment

_LIMIT = settings.ANALYSIS_TASK_TIME_LIMIT


@shared_task(
    acks_late=True, reject_on_worker_lost=True, autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True, retry_backoff_max=300, max_retries=5, soft_time_limit=_LIMIT, time_limit=_LIMIT + 30,
)
def analyze_experiment(experiment_id: int, trigger: str = "schedule") -> int | None:
    """Analyse one experiment and store a report; a failure is stored as a failed report.
    Safe to deliver twice: a second copy finds the advisory lock taken and skips."""
    experiment = Experiment.objects.filter(pk=experiment_id).first()
    if experiment is None:
        return None
    try:
        return services.run_analysis(experiment, trigger=trigger).pk
    except services.AnalysisBusy:
        return None
    except services.AnalysisFailed as exc:
        return exc.report.pk


@shared_task(acks_late=True, reject_on_worker_lost=True)
def analyze_running_experiments(trigger: str = "schedule") -> list[int]:
    """Fan out: one task per running experiment, so one slow or failing analysis does
    not hold up the others."""
    ids = list(Experiment.objects.filter(status=Experiment.Status.RUNNING).values_list("id", flat=True))
    for experiment_id in ids:
        analyze_experiment.delay(experiment_id, trigger)
    return ids
