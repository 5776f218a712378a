"""Surface defaults: what users in no experiment are served, per stage. GET shows them
with their history; an admin changes a stage with PATCH; ship makes the shipped
variant's config the default of its layer's stage, and the closeup serves it to users in
no experiment without a deploy."""

import pytest

from experiments import services
from experiments.models import SurfaceDefaultChange
from recommenders import services as recommender_services
from tests.conftest import as_user

pytestmark = pytest.mark.django_db


def _started(experimenter, stage, variants, key="shipping"):
    layer = services.create_layer(key=f"layer-{key}", name=key, stage=stage)
    experiment = services.create_experiment(
        actor=experimenter, layer=layer, key=key, name=key,
        variants=[{"key": "control", "weight": 50, "is_control": True, "recommender": {"name": variants[0]}},
                  {"key": "treatment", "weight": 50, "recommender": {"name": variants[1]}}])
    services.transition(experiment, "start", actor=experimenter)
    return experiment


def test_the_built_in_defaults_before_anything_shipped(viewer, settings):
    body = as_user(viewer).get("/api/v1/surfaces/closeup").json()
    assert body["defaults"] == [
        {"stage": "whole", "recommender": {"name": settings.DEFAULT_RECOMMENDER, "params": {}}},
        {"stage": "retrieval", "recommender": {"name": settings.DEFAULT_RECOMMENDER, "params": {}}},
        {"stage": "ranking", "recommender": None}]
    assert body["history"] == []
    assert as_user(viewer).get("/api/v1/surfaces/homefeed").status_code == 404


def test_an_admin_changes_a_stage_and_the_change_is_audited(admin_user, experimenter):
    admin = as_user(admin_user)
    changed = admin.patch("/api/v1/surfaces/closeup", {"stage": "ranking", "recommender": {"name": "ranker"}},
                          format="json")
    assert changed.status_code == 200
    assert changed.json()["defaults"][2] == {"stage": "ranking", "recommender": {"name": "ranker", "params": {}}}
    change = changed.json()["history"][0]
    assert (change["stage"], change["before"], change["after"], change["actor"]) == (
        "ranking", None, {"name": "ranker", "params": {}}, admin_user.get_username())
    # A recommender that cannot serve the stage, an unknown stage: 400 naming the field.
    bad = admin.patch("/api/v1/surfaces/closeup", {"stage": "ranking", "recommender": {"name": "popularity"}},
                      format="json")
    assert bad.status_code == 400 and "cannot serve the ranking stage" in str(bad.json()["recommender"])
    assert admin.patch("/api/v1/surfaces/closeup", {"stage": "rerank", "recommender": None},
                       format="json").status_code == 400
    # Only admins change it.
    assert as_user(experimenter).patch("/api/v1/surfaces/closeup", {"stage": "ranking", "recommender": None},
                                       format="json").status_code == 403


def test_ship_launches_the_variant_to_users_in_no_experiment(key_client, experimenter, viewer, world, models_dir,
                                                             settings):
    settings.ASSIGNMENT_CONFIG_CHECK_SECONDS = 0
    recommender_services.build_all(["popularity", "board_cooccurrence", "pixie"])
    experiment = _started(experimenter, "whole", ("popularity", "board_cooccurrence"))
    outsider = "nobody-in-an-experiment"
    services.transition(experiment, "stop", actor=experimenter)
    before = key_client.get(f"/api/v1/closeup/5?user_id={outsider}&k=5").json()
    assert before["served_by"][0]["recommender"] == "popularity"

    shipped = as_user(experimenter).post(f"/api/v1/experiments/{experiment.key}/ship", {"variant": "treatment"},
                                         format="json")
    assert shipped.status_code == 200 and shipped.json()["status"] == "shipped"
    after = key_client.get(f"/api/v1/closeup/5?user_id={outsider}&k=5").json()
    assert after["assignments"] == []
    assert after["served_by"][0]["recommender"] == "board_cooccurrence"
    surface = as_user(viewer).get("/api/v1/surfaces/closeup").json()
    assert surface["defaults"][0]["recommender"]["name"] == "board_cooccurrence"
    assert surface["history"][0]["source"] == f"ship {experiment.key}: treatment"


def test_shipping_a_ranker_adds_a_ranking_stage_for_everyone(experimenter):
    experiment = _started(experimenter, "ranking", ("ranker", "ranker"))
    services.transition(experiment, "ship", actor=experimenter, variant="treatment")
    change = SurfaceDefaultChange.objects.get()
    assert (change.stage, change.after) == ("ranking", {"name": "ranker", "params": {}})
