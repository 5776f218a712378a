"""Which queue a task goes to. Builds take minutes to hours where every other task takes
seconds, so they have a queue of their own (settings.BUILD_QUEUE) and a worker with
limits that fit them; read at publish time, so a test's per-run queue names apply."""

from django.conf import settings

BUILD_TASKS = frozenset({"recommenders.tasks.run_build_job", "recommenders.tasks.retrain_recommenders"})


def route_task(name, args, kwargs, options, task=None, **kw):
    if name in BUILD_TASKS:
        return {"queue": settings.BUILD_QUEUE}
    return None
