"""An experiment that another decides the closeup before (an older layer of the same
stage, or a whole-list one over a stage) says so on read and on its page, with the
share of its users concerned: it would otherwise sit at zero users without a word."""

import pytest

from experiments import services
from tests.conftest import as_user

pytestmark = pytest.mark.django_db


def running(experimenter, layer_key, stage, key, traffic=100.0, status="start"):
    layer = services.create_layer(key=layer_key, name=layer_key, stage=stage)
    experiment = services.create_experiment(
        actor=experimenter, layer=layer, key=key, name=key, traffic_percent=traffic,
        variants=[{"key": "control", "weight": 50, "is_control": True,
                   "recommender": {"name": "ranker" if stage == "ranking" else "popularity"}},
                  {"key": "treatment", "weight": 50,
                   "recommender": {"name": "ranker" if stage == "ranking" else "pixie"}}])
    if status:
        services.transition(experiment, status, actor=experimenter)
    return experiment


def test_an_older_whole_layer_and_a_whole_list_experiment_overshadow_newer_ones(experimenter, client):
    running(experimenter, "demo", "whole", "demo", traffic=50)
    running(experimenter, "mine", "whole", "mine", status=None)
    running(experimenter, "ranking", "ranking", "ranked")
    api = as_user(experimenter)
    read = {e["key"]: e["overshadowed_by"] for e in api.get("/api/v1/experiments").json()}
    assert read["demo"] == []
    assert read["mine"] == [{"experiment": "demo", "layer": "demo", "stage": "whole", "share": 0.5}]
    # A ranking experiment is overshadowed by every whole-list one, older or newer.
    assert {o["experiment"] for o in read["ranked"]} == {"demo"}
    client.force_login(experimenter)
    page = client.get("/experiments/mine/").content.decode()
    assert "Another experiment decides the closeup first" in page and "demo (layer demo, whole stage) includes 50%" \
        in page


def test_a_stopped_experiment_overshadows_nobody(experimenter):
    demo = running(experimenter, "demo", "whole", "demo")
    running(experimenter, "mine", "whole", "mine")
    services.transition(demo, "stop", actor=experimenter)
    assert as_user(experimenter).get("/api/v1/experiments/mine").json()["overshadowed_by"] == []
