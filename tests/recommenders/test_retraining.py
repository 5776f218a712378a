"""The daily retrain on a synthetic world: new versions from the window, the gate on the
held-out day against the version in use, and the experiment it starts."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from experiments import services as experiment_services
from experiments import surfaces
from experiments.models import Experiment
from recommenders import retraining
from recommenders import services as recommender_services
from recommenders.models import Interaction, ModelVersion, RetrainPolicy
from recommenders.serving import load_models
from tests.conftest import as_user

FAST = ["popularity", "pixie"]


@pytest.fixture
def dated_world(world, models_dir, settings):
    """The world's interactions spread over the last 20 days, with a fifth of each
    user's on the last day: the day the gate holds out."""
    settings.RETRAIN_RECOMMENDERS = FAST
    rng = np.random.default_rng(3)
    now = timezone.now()
    rows = list(Interaction.objects.order_by("id"))
    for row in rows:
        if rng.random() < 0.2:
            row.at = now - timedelta(hours=float(rng.uniform(0.1, 23)))
        else:
            row.at = now - timedelta(days=float(rng.uniform(1.1, 20)))
    Interaction.objects.bulk_update(rows, ["at"], batch_size=2000)
    # The versions in use: built on everything, as the first build of a deployment is.
    in_use = recommender_services.build_all(FAST)[0].version
    return in_use


def _policy(design="interleaving", traffic=20.0):
    return RetrainPolicy.objects.create(surface="closeup", auto_experiment=True, design=design,
                                        traffic_percent=traffic)


def test_retrain_builds_gated_versions_and_starts_an_interleaving_experiment(dated_world, experimenter):
    in_use = dated_world
    surfaces.set_default(surface="closeup", stage="whole", recommender={"name": "pixie", "params": {}}, actor=None,
                         source="test")
    _policy()

    summary = retraining.retrain()

    version = summary["version"]
    assert version != in_use
    assert summary["holdout_users"] >= 30
    for name in FAST:
        row = ModelVersion.objects.get(name=name, version=version)
        # Kept beside the version in use, not replacing it: an experiment decides that.
        assert not row.is_active
        assert ModelVersion.objects.get(name=name, version=in_use).is_active
        assert row.offline["users"] == summary["holdout_users"]
        assert 0 < row.offline["ndcg_at_10"] < 1
        assert row.gate["baseline_version"] == in_use
        assert row.gate["passed"] is row.servable is True
        # Both measured on the same held-out users: the change is the difference of the two.
        assert row.gate["ndcg_change"] == pytest.approx(row.offline["ndcg_at_10"] - row.gate["baseline"]["ndcg_at_10"])
        # The version in use gets its numbers on that day too, for the experiment's page.
        assert ModelVersion.objects.get(name=name, version=in_use).offline["ndcg_at_10"] == pytest.approx(
            row.gate["baseline"]["ndcg_at_10"])

    experiment = Experiment.objects.get(key=summary["experiment"])
    assert experiment.status == Experiment.Status.RUNNING
    assert experiment.design == "interleaving"
    assert experiment.traffic_percent == 20.0
    assert experiment.layer.stage == "whole"
    pinned = {v.key: v.recommender for v in experiment.variants.all()}
    assert pinned["in-use"] == {"name": "pixie", "params": {}, "version": in_use}
    assert pinned["retrained"] == {"name": "pixie", "params": {}, "version": version}

    # Read through the API as an experimenter would.
    listed = as_user(experimenter).get("/api/v1/recommenders").json()
    pixie = next(r for r in listed if r["name"] == "pixie")
    newest = pixie["versions"][0]
    assert newest["version"] == version and newest["gate"]["passed"] and newest["servable"]
    assert summary["experiment"] in newest["experiments"]


def test_the_next_retrain_supersedes_the_running_retrain_experiment(dated_world):
    _policy(design="ab", traffic=10.0)
    first = retraining.retrain()
    second = retraining.retrain(now=timezone.now() + timedelta(seconds=1))
    assert Experiment.objects.get(key=first["experiment"]).status == Experiment.Status.STOPPED
    latest = Experiment.objects.get(key=second["experiment"])
    assert latest.status == Experiment.Status.RUNNING and latest.design == "ab"


def test_a_version_that_fails_the_gate_is_kept_with_its_numbers_and_never_served(dated_world, settings, experimenter):
    settings.RETRAIN_GATE_MAX_NDCG_DROP = -1.0  # would have to beat the version in use by a whole NDCG point
    _policy()

    summary = retraining.retrain()

    version = summary["version"]
    assert summary["experiment"] is None and "no new version that passed" in summary["experiment_note"]
    row = ModelVersion.objects.get(name="popularity", version=version)
    assert not row.servable and not row.gate["passed"]
    assert "NDCG@10" in row.gate["reasons"][0]
    assert row.offline["ndcg_at_10"] > 0  # kept with its numbers

    with pytest.raises(ValueError, match="failed the offline gate"):
        recommender_services.activate_version(version, ["popularity"])
    experiment_services.create_layer(key="main", name="Main")
    response = as_user(experimenter).post("/api/v1/experiments", {
        "key": "pin-failed", "name": "Pin a failed version", "layer": "main",
        "variants": [
            {"key": "control", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}},
            {"key": "treatment", "weight": 50, "recommender": {"name": "popularity", "version": version}},
        ]}, format="json")
    assert response.status_code == 400
    assert "failed its offline gate" in str(response.json()["variants[1].recommender"])

    models = load_models()
    assert ("popularity", version) not in models.loaded


def test_too_few_held_out_users_fails_closed(dated_world, settings):
    settings.RETRAIN_GATE_MIN_USERS = 100_000
    summary = retraining.retrain()
    assert all(not v["passed"] for v in summary["gate"].values())
    assert "held-out users" in summary["gate"]["pixie"]["reasons"][0]


def test_nothing_in_the_window_is_a_clear_failure(world, models_dir, settings):
    settings.RETRAIN_RECOMMENDERS = FAST
    Interaction.objects.update(at=timezone.now() - timedelta(days=400))
    with pytest.raises(retraining.RetrainError, match="no interactions or logged engagements"):
        retraining.retrain()


def test_the_recommenders_page_shows_gate_verdicts_linked_experiments_and_jobs(dated_world, viewer, admin_user,
                                                                              settings, monkeypatch):
    surfaces.set_default(surface="closeup", stage="whole", recommender={"name": "pixie", "params": {}}, actor=None,
                         source="test")
    _policy()
    passed = retraining.retrain()
    settings.RETRAIN_GATE_MAX_NDCG_DROP = -1.0
    failed = retraining.retrain(now=timezone.now() + timedelta(seconds=1))

    page = as_user(viewer).get("/recommenders").content.decode()
    assert passed["experiment"] in page  # linked from both versions it pins
    assert page.count(f'href="/experiments/{passed["experiment"]}/"') >= 2
    assert "failed: never served" in page and "below the version in use" in page
    assert f'{passed["gate"]["pixie"]["ndcg_at_10"]:.4f}' in page
    assert failed["version"] in page
    assert "Retrain now" not in page  # a viewer reads; only admins queue builds

    sent = []
    monkeypatch.setattr("recommenders.jobs.send", sent.append)
    admin = as_user(admin_user)
    assert as_user(viewer).post("/recommenders", {"what": "retrain"}).status_code == 403
    admin.post("/recommenders", {"what": "policy", "design": "ab", "traffic_percent": "7.5"})
    policy = RetrainPolicy.objects.get(surface="closeup")
    assert (policy.auto_experiment, policy.design, policy.traffic_percent) == (False, "ab", 7.5)
    refused = admin.post("/recommenders", {"what": "policy", "design": "ab", "traffic_percent": "0"}, follow=True)
    assert "between 0.1 and 100" in refused.content.decode()
    assert RetrainPolicy.objects.get(surface="closeup").traffic_percent == 7.5
