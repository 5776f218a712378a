import pytest

from experiments import services


@pytest.fixture
def layer(db):
    return services.create_layer(key="closeup-ranking", name="Closeup ranking")


def experiment_body(key="ranker-v2", layer="closeup-ranking", **overrides):
    body = {
        "key": key,
        "name": "Ranker v2",
        "hypothesis": "The learned ranker lifts closeup CTR.",
        "surface": "closeup",
        "layer": layer,
        "traffic_percent": 100,
        "variants": [
            {"key": "control", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}},
            {"key": "ranker", "weight": 50, "recommender": {"name": "pixie", "params": {"steps": 5000}}},
        ],
        "primary_metric": "closeup_ctr",
        "guardrail_metrics": ["hide_rate"],
    }
    body.update(overrides)
    return body


@pytest.fixture
def running_experiment(layer, experimenter):
    from experiments.models import Experiment

    body = experiment_body()
    body.pop("layer")
    body.pop("surface")
    exp = services.create_experiment(actor=experimenter, layer=layer, **body)
    services.transition(exp, "start", actor=experimenter)
    return Experiment.objects.get(pk=exp.pk)
