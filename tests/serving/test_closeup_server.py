"""The closeup endpoint under the production server, where import order once broke
restoring the ranker (LightGBM loaded after the rest in a gunicorn worker)."""

import json

import pytest

from accounts.services import create_api_key
from experiments import services as experiment_services
from recommenders import services
from recommenders.synthetic import generate_world
from tests import processes


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_gunicorn_serves_every_recommender_without_fallback(tmp_path, settings, experimenter):
    settings.RECOMMENDER_MODELS_DIR = tmp_path / "models"
    services.import_world(generate_world(n_pins=400, n_users=100, n_topics=5, seed=2))
    services.build_all()
    names = ["popularity", "board_cooccurrence", "pixie", "embedding", "ease", "ranker"]
    layer = experiment_services.create_layer(key="served", name="Served")
    exp = experiment_services.create_experiment(
        actor=experimenter, layer=layer, key="served", name="Served",
        variants=[{"key": n.replace("_", "-"), "weight": 100 / len(names), "is_control": i == 0,
                   "recommender": {"name": n}, "forced_user_ids": [f"qa-{n}"]} for i, n in enumerate(names)],
    )
    experiment_services.transition(exp, "start", actor=experimenter)
    key = create_api_key("server-test").key
    # A deadline far above the 200 ms default: this test is about every recommender loading
    # and answering in a forked server, and a first call on a busy machine may be slow.
    with processes.web_server(workers=1, RECOMMENDER_MODELS_DIR=settings.RECOMMENDER_MODELS_DIR,
                              RECOMMENDER_TIMEOUT_MS=30_000) as base:
        for name in names:
            status, body = processes.http_get(f"{base}/api/v1/closeup/7?user_id=qa-{name}&k=10",
                                              headers={"Authorization": f"Api-Key {key}"}, timeout=30)
            assert status == 200, body
            answer = json.loads(body)
            assert (answer["recommender"], answer["fallback_reason"]) == (name, None)
            assert answer["items"]
