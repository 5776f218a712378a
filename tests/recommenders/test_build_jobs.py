"""Builds and retrains as jobs on the builds queue: queued through the API, run by a
worker of that queue with progress on the row, run once per delivery, and queued again
when the worker running one dies."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from experiments.models import Experiment
from recommenders import jobs
from recommenders import services as recommender_services
from recommenders.models import BuildJob, Interaction, ModelVersion, RetrainPolicy
from tests import processes
from tests.conftest import as_user


def test_queueing_a_build_needs_an_admin_and_known_recommenders(db, experimenter, admin_user, monkeypatch,
                                                                django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr("recommenders.jobs.send", sent.append)
    assert as_user(experimenter).post("/api/v1/recommenders/builds", {"names": ["popularity"]},
                                      format="json").status_code == 403
    admin = as_user(admin_user)
    bad = admin.post("/api/v1/recommenders/builds", {"names": ["popularity", "nope"]}, format="json")
    assert bad.status_code == 400 and "nope" in bad.json()["names"][0]
    assert "kind" in admin.post("/api/v1/recommenders/builds", {"kind": "rebuild"}, format="json").json()
    with django_capture_on_commit_callbacks(execute=True):
        made = admin.post("/api/v1/recommenders/builds", {"names": ["popularity"]}, format="json")
    assert made.status_code == 202
    job = made.json()
    assert job["state"] == "queued" and job["names"] == ["popularity"] and job["progress"] is None
    assert sent == [job["id"]]
    assert as_user(experimenter).get(f"/api/v1/recommenders/builds/{job['id']}").json()["state"] == "queued"


def test_a_second_delivery_of_a_running_job_does_nothing(world, models_dir):
    job = BuildJob.objects.create(names=["popularity"])
    assert jobs.claim(job.pk) is not None
    assert jobs.claim(job.pk) is None  # the heartbeat is fresh: another worker has it
    assert jobs.run(job.pk) is None
    assert not ModelVersion.objects.exists()


def test_a_job_whose_worker_died_runs_again_then_fails_after_the_last_attempt(db, settings, monkeypatch):
    sent = []
    monkeypatch.setattr("recommenders.jobs.send", sent.append)
    silent = timezone.now() - timedelta(seconds=settings.BUILD_STALE_SECONDS + 5)
    died = BuildJob.objects.create(state=BuildJob.State.RUNNING, heartbeat_at=silent, attempts=1)
    alive = BuildJob.objects.create(state=BuildJob.State.RUNNING, heartbeat_at=timezone.now(), attempts=1)
    spent = BuildJob.objects.create(state=BuildJob.State.RUNNING, heartbeat_at=silent,
                                    attempts=settings.BUILD_MAX_ATTEMPTS)
    assert jobs.sweep() == [died.pk]
    assert sent == [died.pk]
    died.refresh_from_db(), alive.refresh_from_db(), spent.refresh_from_db()
    assert died.state == "queued" and "attempt 2" in died.step
    assert alive.state == "running"
    assert spent.state == "failed" and "stopped answering" in spent.error


def test_the_daily_schedule_makes_one_retrain_a_day(db, settings):
    from recommenders.retraining import schedule_daily

    assert schedule_daily() is not None
    assert schedule_daily() is None
    settings.RETRAIN_ENABLED = False
    BuildJob.objects.all().delete()
    assert schedule_daily() is None


def test_the_retrain_is_on_the_beat_at_the_configured_hour(db, settings):
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="recommenders.tasks.retrain_recommenders")
    assert task.enabled and task.crontab.hour == str(settings.RETRAIN_HOUR) and task.crontab.minute == "0"
    assert PeriodicTask.objects.filter(task="recommenders.tasks.sweep_build_jobs", enabled=True).exists()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_retrain_queued_through_the_api_runs_on_the_builds_worker_end_to_end(tmp_path, settings, admin_user):
    """The loop through a real Celery worker of the builds queue: a synthetic world with a
    held-out day, the retrain job with its progress, gated versions, and the experiment."""
    from recommenders.synthetic import generate_world

    settings.RECOMMENDER_MODELS_DIR = tmp_path / "models"
    recommender_services.import_world(generate_world(n_pins=600, n_users=150, n_topics=6, seed=5))
    rng = np.random.default_rng(4)
    now = timezone.now()
    rows = list(Interaction.objects.order_by("id"))
    for row in rows:
        row.at = now - (timedelta(hours=float(rng.uniform(0.1, 23))) if rng.random() < 0.2
                        else timedelta(days=float(rng.uniform(1.1, 20))))
    Interaction.objects.bulk_update(rows, ["at"], batch_size=2000)
    in_use = recommender_services.build_all(["popularity"])[0].version
    RetrainPolicy.objects.create(surface="closeup", auto_experiment=True, traffic_percent=15)
    env = {"RECOMMENDER_MODELS_DIR": str(settings.RECOMMENDER_MODELS_DIR), "RETRAIN_RECOMMENDERS": "popularity"}
    with processes.celery_worker(concurrency=1, log_path=tmp_path / "builds.log", queues=settings.BUILD_QUEUE,
                                 **env):
        job = as_user(admin_user).post("/api/v1/recommenders/builds", {"kind": "retrain", "names": ["popularity"]},
                                       format="json").json()
        processes.wait_until(
            lambda: BuildJob.objects.get(pk=job["id"]).state in ("succeeded", "failed"), timeout=120,
            what="the retrain job to finish")
    done = BuildJob.objects.get(pk=job["id"])
    assert done.state == "succeeded", done.error
    assert done.steps_done == done.steps_total > 0 and done.attempts == 1
    new = ModelVersion.objects.get(name="popularity", version=done.version)
    assert new.build_job_id == done.pk and new.gate["passed"] and new.gate["baseline_version"] == in_use
    experiment = Experiment.objects.get(key=done.summary["experiment"])
    assert experiment.status == "running" and experiment.design == "interleaving"
    assert {v.recommender["version"] for v in experiment.variants.all()} == {in_use, done.version}


def test_a_surface_retrain_policy_is_read_by_anyone_and_set_by_admins(db, viewer, admin_user):
    assert as_user(viewer).get("/api/v1/surfaces/closeup/retrain").json()["auto_experiment"] is False
    assert as_user(viewer).put("/api/v1/surfaces/closeup/retrain", {"auto_experiment": True},
                               format="json").status_code == 403
    admin = as_user(admin_user)
    bad = admin.put("/api/v1/surfaces/closeup/retrain", {"auto_experiment": True, "design": "bandit",
                                                         "traffic_percent": 0}, format="json")
    assert bad.status_code == 400 and set(bad.json()) >= {"design", "traffic_percent"}
    assert admin.put("/api/v1/surfaces/nowhere/retrain", {"auto_experiment": True}, format="json").status_code == 404
    saved = admin.put("/api/v1/surfaces/closeup/retrain", {"auto_experiment": True, "traffic_percent": 5},
                      format="json").json()
    assert saved == {**saved, "auto_experiment": True, "design": "interleaving", "traffic_percent": 5.0}
    assert RetrainPolicy.objects.get(surface="closeup").traffic_percent == 5.0
