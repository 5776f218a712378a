"""The periodic analyses, as django-celery-beat rows an admin may edit."""


def ensure_schedules(apps=None, using="default") -> None:
    if apps is None:
        from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
    else:
        CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
        IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    hourly, _ = IntervalSchedule.objects.using(using).get_or_create(every=1, period="hours")
    daily, _ = CrontabSchedule.objects.using(using).get_or_create(
        minute="15", hour="6", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.using(using).get_or_create(
        name="Refresh the analysis of running experiments",
        defaults={"task": "analysis.tasks.analyze_running_experiments", "interval": hourly,
                  "kwargs": '{"trigger": "schedule"}'},
    )
    PeriodicTask.objects.using(using).get_or_create(
        name="Daily analysis report of each running experiment",
        defaults={"task": "analysis.tasks.analyze_running_experiments", "crontab": daily,
                  "kwargs": '{"trigger": "daily"}'},
    )
