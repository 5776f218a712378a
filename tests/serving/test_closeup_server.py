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


def _closeup(base, key, user, **attrs):
    query = "&".join(f"attr.{k}={v}" for k, v in attrs.items())
    status, body = processes.http_get(f"{base}/api/v1/closeup/7?user_id={user}&k=8&{query}",
                                      headers={"Authorization": f"Api-Key {key}"}, timeout=30)
    assert status == 200, body
    return json.loads(body)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_targeted_retrieval_and_ranking_experiments_with_pinned_versions_then_a_ship(tmp_path, settings,
                                                                                    experimenter):
    """Issue 15's check, as a client sees it through gunicorn: a retrieval experiment
    pinning two versions of one recommender and a ranking experiment, each targeted;
    both shape the closeups of users they target, exposures only where they did, the
    versions served as pinned, and a ship served to users in no experiment."""
    from experiments.models import Exposure

    settings.RECOMMENDER_MODELS_DIR = tmp_path / "models"
    services.import_world(generate_world(n_pins=400, n_users=100, n_topics=5, seed=2))
    old = services.build_all(["popularity", "pixie", "ranker"])[0].version
    new = services.build_all(["pixie"])[0].version
    assert old != new

    def started(stage, targeting, control, treatment):
        layer = experiment_services.create_layer(key=f"held-out-{stage}", name=stage, stage=stage)
        exp = experiment_services.create_experiment(
            actor=experimenter, layer=layer, key=f"held-out-{stage}", name=stage, targeting=targeting,
            variants=[{"key": "control", "weight": 50, "is_control": True, "recommender": control},
                      {"key": "treatment", "weight": 50, "recommender": treatment}])
        return experiment_services.transition(exp, "start", actor=experimenter)

    retrieval = started("retrieval", {"attribute": "country", "op": "eq", "value": "FR"},
                        {"name": "pixie", "version": old}, {"name": "pixie", "version": new})
    ranking = started("ranking", {"attribute": "age", "op": "gte", "value": 18},
                      {"name": "ranker"}, {"name": "ranker", "params": {"candidates_per_source": 50}})
    key = create_api_key("held-out").key
    pinned = {"control": old, "treatment": new}
    with processes.web_server(workers=1, RECOMMENDER_MODELS_DIR=settings.RECOMMENDER_MODELS_DIR,
                              RECOMMENDER_TIMEOUT_MS=30_000, ASSIGNMENT_CONFIG_CHECK_SECONDS=0) as base:
        both = [f"fr-adult-{i}" for i in range(20)]
        for user in both:
            answer = _closeup(base, key, user, country="FR", age=30)
            shaped = {a["experiment"]: a["variant"] for a in answer["assignments"]}
            assert shaped.keys() == {retrieval.key, ranking.key}
            stages = {s["stage"]: s for s in answer["served_by"]}
            assert stages["retrieval"]["recommender"] == "pixie"
            assert stages["retrieval"]["version"] == pinned[shaped[retrieval.key]]
            assert stages["ranking"]["recommender"] == "ranker" and answer["fallback_reason"] is None
        # Targeting: "17" reads as a number, below 18; DE is not FR.
        minors = [f"fr-minor-{i}" for i in range(10)]
        for user in minors:
            answer = _closeup(base, key, user, country="FR", age=17)
            assert [a["experiment"] for a in answer["assignments"]] == [retrieval.key]
        outsiders = [f"de-{i}" for i in range(10)]
        for user in outsiders:
            assert _closeup(base, key, user, country="DE")["assignments"] == []

        processes.wait_until(lambda: Exposure.objects.count() == 2 * len(both) + len(minors), timeout=30,
                             what="the closeups' exposures")
        assert set(Exposure.objects.filter(experiment=retrieval).values_list("user_id", flat=True)) == \
            set(both + minors)
        exposed = Exposure.objects.filter(experiment=ranking)
        assert set(exposed.values_list("user_id", flat=True)) == set(both)
        assert all(e.attributes == {"country": "FR", "age": 30} for e in exposed)

        experiment_services.transition(retrieval, "ship", actor=experimenter, variant="treatment")
        answer = _closeup(base, key, "de-after-ship", country="DE")
        assert answer["assignments"] == []
        assert [(s["stage"], s["recommender"], s["version"]) for s in answer["served_by"]] == [
            ("retrieval", "pixie", new)]
