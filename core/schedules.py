"""Every periodic task, in one place: what runs, how often, under which name. Each is a
django-celery-beat row that an admin may edit or disable; `ensure` creates the rows
that are missing after every migrate (and flush), and never overwrites an edited one.

Tasks are named by string, so this module imports no app: adding a periodic job is a
task in the app's tasks.py plus one line here."""

from dataclasses import dataclass


@dataclass(frozen=True)
class PeriodicJob:
    name: str  # the row's unique name, as the admin shows it
    task: str
    every: tuple[int, str] | None = None  # (10, "seconds")
    # "minute hour day_of_month month_of_year day_of_week", UTC; {NAME} is the setting NAME,
    # read when the row is first made (an admin changes it on the row after that)
    crontab: str | None = None
    kwargs: str = "{}"


PERIODIC_JOBS = (
    PeriodicJob("Re-enqueue unfinished event batches", "events.tasks.sweep_event_batches", every=(10, "seconds")),
    PeriodicJob("Step up ship rollouts whose hold is over", "experiments.tasks.advance_rollouts", every=(1, "minutes")),
    PeriodicJob("Create and drop event partitions", "events.tasks.maintain_event_partitions", every=(1, "hours")),
    PeriodicJob("Refresh the analysis of running experiments", "analysis.tasks.analyze_running_experiments",
                every=(1, "hours"), kwargs='{"trigger": "schedule"}'),
    PeriodicJob("Daily analysis report of each running experiment", "analysis.tasks.analyze_running_experiments",
                crontab="15 6 * * *", kwargs='{"trigger": "daily"}'),
    PeriodicJob("Retrain recommenders and gate the new versions", "recommenders.tasks.retrain_recommenders",
                crontab="0 {RETRAIN_HOUR} * * *"),
    PeriodicJob("Queue again the builds whose worker died", "recommenders.tasks.sweep_build_jobs",
                every=(1, "minutes")),
    PeriodicJob("Send webhook and email alerts whose retry is due", "alerts.tasks.sweep_deliveries",
                every=(10, "seconds")),
)


def ensure(jobs=PERIODIC_JOBS, apps=None, using: str = "default", settings=None) -> None:
    """Create the beat rows of `jobs` that do not exist yet (by name). With `apps`, the
    historical models of a migration or a post_migrate signal; `settings` fills the
    crontabs' {NAME} fields."""
    if apps is None:
        # Here, not at the top: core's AppConfig imports this module before models may be.
        from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
    else:
        CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
        IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for job in jobs:
        if PeriodicTask.objects.using(using).filter(name=job.name).exists():
            continue
        schedule = {}
        if job.every is not None:
            every, period = job.every
            schedule["interval"], _ = IntervalSchedule.objects.using(using).get_or_create(every=every, period=period)
        else:
            crontab = job.crontab.format_map({k: getattr(settings, k) for k in _fields(job.crontab)})
            minute, hour, day_of_month, month_of_year, day_of_week = crontab.split()
            schedule["crontab"], _ = CrontabSchedule.objects.using(using).get_or_create(
                minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
                day_of_week=day_of_week, timezone="UTC")
        PeriodicTask.objects.using(using).create(name=job.name, task=job.task, kwargs=job.kwargs, **schedule)


def _fields(template: str) -> list[str]:
    import string

    return [name for _, name, _, _ in string.Formatter().parse(template) if name]
