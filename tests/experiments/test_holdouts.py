"""Holdouts that are measured: the held-back users keep the surface defaults as they were
when the holdout started (ships do not reach them), every closeup user is exposed in the
holdout's experiment (held back or launched), and its results are the holdout's report."""

import pytest

from analysis import services as analysis_services
from experiments import services
from experiments.assignment import HoldoutConfig
from experiments.exposures import buffer
from experiments.models import Experiment, Exposure, Holdout
from recommenders import services as recommender_services
from tests.conftest import as_user

pytestmark = pytest.mark.django_db

committed = pytest.mark.django_db(transaction=True)


def _ship_board_cooccurrence(experimenter):
    layer = services.create_layer(key="whole-list", name="Whole list")
    experiment = services.create_experiment(
        actor=experimenter, layer=layer, key="boards", name="Boards",
        variants=[{"key": "control", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}},
                  {"key": "treatment", "weight": 50, "recommender": {"name": "board_cooccurrence"}}])
    services.transition(experiment, "start", actor=experimenter)
    services.transition(experiment, "ship", actor=experimenter, variant="treatment")
    return experiment


@committed
def test_held_back_users_keep_the_old_default_and_both_groups_are_measured(key_client, admin_user, experimenter,
                                                                          viewer, world, models_dir, settings):
    settings.ASSIGNMENT_CONFIG_CHECK_SECONDS = 0
    recommender_services.build_all(["popularity", "board_cooccurrence"])
    started = as_user(admin_user).post("/api/v1/surfaces/closeup/holdout", {"percent": 10}, format="json")
    assert started.status_code == 201, started.json()
    holdout = started.json()["holdout"]
    assert holdout["percent"] == 10 and holdout["active"]
    assert holdout["defaults"]["whole"]["name"] == settings.DEFAULT_RECOMMENDER
    measured = Experiment.objects.get(key=holdout["experiment"])
    assert measured.status == "running"

    _ship_board_cooccurrence(experimenter)
    config = HoldoutConfig(salt=Holdout.objects.get().salt, percent=10)
    users = [f"u{i}" for i in range(300)]
    held = [u for u in users if config.holds_out(u)]
    free = [u for u in users if not config.holds_out(u)]
    assert held and free
    for user in users:
        served = key_client.get(f"/api/v1/closeup/5?user_id={user}&k=3").json()
        expected = "popularity" if user in held else "board_cooccurrence"
        assert served["served_by"][0]["recommender"] == expected, user
        assert served["assignments"] == [], "the holdout's measurement shapes nothing"
    buffer.flush()
    exposures = dict(Exposure.objects.filter(experiment=measured).values_list("user_id", "variant__key"))
    assert exposures == {**{u: "held_back" for u in held}, **{u: "launched" for u in free}}

    report = analysis_services.run_analysis(measured)
    assert report.results["srm"]["observed"] == {"held_back": len(held), "launched": len(free)}
    assert not report.results["srm"]["flagged"]

    ended = as_user(admin_user).delete("/api/v1/surfaces/closeup/holdout")
    assert ended.status_code == 200 and ended.json()["holdout"] is None
    measured.refresh_from_db()
    assert measured.status == "stopped"
    # Back to today's default for everyone.
    assert key_client.get(f"/api/v1/closeup/5?user_id={held[0]}&k=3").json()["served_by"][0]["recommender"] == \
        "board_cooccurrence"


def test_the_holdout_experiment_follows_the_holdout_not_its_own_lifecycle(admin_user, experimenter):
    services.set_holdout(surface="closeup", percent=5, actor=admin_user)
    measured = Holdout.objects.get(is_active=True).experiment
    admin = as_user(admin_user)
    for action in ("pause", "stop", "ship"):
        response = admin.post(f"/api/v1/experiments/{measured.key}/{action}", {"variant": "launched"}, format="json")
        assert response.status_code == 400 and "end the holdout instead" in response.json()["status"][0]
    response = admin.patch(f"/api/v1/experiments/{measured.key}", {"traffic_percent": 50}, format="json")
    assert response.status_code == 400
    # Nobody else may use its layer.
    layer = measured.layer
    created = admin.post("/api/v1/experiments", {
        "key": "sneaky", "name": "Sneaky", "layer": layer.key,
        "variants": [{"key": "a", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}},
                     {"key": "b", "weight": 50, "recommender": {"name": "pixie"}}]}, format="json")
    assert created.status_code == 400 and "reserved" in created.json()["layer"][0]


def test_a_new_share_starts_a_new_holdout_and_keeps_the_old_report(admin_user):
    first = services.set_holdout(surface="closeup", percent=5)
    second = services.set_holdout(surface="closeup", percent=10)
    first.refresh_from_db()
    assert not first.is_active and first.ended_at is not None and first.experiment.status == "stopped"
    assert second.is_active and second.experiment_id != first.experiment_id
    assert services.set_holdout(surface="closeup", percent=10).pk == second.pk


@pytest.mark.parametrize("percent", [0, -5, 60, "ten", None, True])
def test_bad_holdout_shares_are_400(admin_user, percent):
    response = as_user(admin_user).post("/api/v1/surfaces/closeup/holdout", {"percent": percent}, format="json")
    assert response.status_code == 400 and "percent" in response.json()
    assert not Holdout.objects.exists()


def test_only_admins_start_or_end_a_holdout_and_one_at_a_time(admin_user, experimenter):
    assert as_user(experimenter).post("/api/v1/surfaces/closeup/holdout", {"percent": 5},
                                      format="json").status_code == 403
    admin = as_user(admin_user)
    assert admin.post("/api/v1/surfaces/closeup/holdout", {"percent": 5}, format="json").status_code == 201
    again = admin.post("/api/v1/surfaces/closeup/holdout", {"percent": 5}, format="json")
    assert again.status_code == 400 and "end it first" in again.json()["percent"][0]
    assert as_user(experimenter).delete("/api/v1/surfaces/closeup/holdout").status_code == 403
    assert admin.delete("/api/v1/surfaces/closeup/holdout").status_code == 200
    assert admin.delete("/api/v1/surfaces/closeup/holdout").status_code == 400
