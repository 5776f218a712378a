"""The closeup of an interleaving experiment: both rankers' lists merged by team draft
under the request's seed, every item labelled with its team's variant key, the served
impressions storing the team; one ranker failing serves the other's list unmerged and
unlabelled; and the designs the API refuses."""

import pytest

from events import ingestion
from events.models import Event, EventBatch
from experiments import services as experiment_services
from experiments.interleaving import request_seed, team_draft
from recommenders.serving import current_models
from serving.impressions import impressions
from tests.conftest import as_user
from tests.serving.test_closeup_stages import ranker_built  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_api(admin_user):
    return as_user(admin_user)


@pytest.fixture(autouse=True)
def _generous_deadline(settings):
    settings.RECOMMENDER_TIMEOUT_MS = 30_000


def interleaving(experimenter, stage="whole", control=None, treatment=None, key="interleaved"):
    layer = experiment_services.create_layer(key=f"{key}-layer", name=key, stage=stage)
    experiment = experiment_services.create_experiment(
        actor=experimenter, layer=layer, key=key, name=key, design="interleaving",
        variants=[{"key": "popularity", "weight": 50, "is_control": True,
                   "recommender": control or {"name": "popularity"}},
                  {"key": "cooccurrence", "weight": 50,
                   "recommender": treatment or {"name": "board_cooccurrence"}}])
    experiment_services.transition(experiment, "start", actor=experimenter)
    return experiment


def closeup(client, pin_id=5, user_id="user-3", k=10):
    return client.get(f"/api/v1/closeup/{pin_id}", {"user_id": user_id, "k": k})


def test_the_closeup_serves_the_team_draft_of_both_lists_labelled_by_variant(key_client, built, experimenter):
    interleaving(experimenter)
    for user in ("user-3", "user-7", "someone-new"):
        body = closeup(key_client, user_id=user).json()
        assert [(a["experiment"], a["layer"]) for a in body["assignments"]] == [("interleaved", "interleaved-layer")]
        assert {s["team"]: s["recommender"] for s in body["served_by"]} == {
            "popularity": "popularity", "cooccurrence": "board_cooccurrence"}
        # The same merge, recomputed from the two recommenders and the request id.
        models = current_models()
        pin = models.catalog.pin_index(5)
        history = models.catalog.history(user)
        topics = models.user_topics(history)
        lists = {team: models.recommender(name).related(pin, history, 10, [], topics)
                 for team, name in (("popularity", "popularity"), ("cooccurrence", "board_cooccurrence"))}
        merged = team_draft(lists, 10, request_seed(body["request_id"]))
        ids = models.catalog.pin_ids
        assert [(i["pin_id"], i["team"]) for i in body["items"]] == [(int(ids[p.item]), p.team) for p in merged]
        assert [i["position"] for i in body["items"]] == list(range(10))
        assert body["fallback_reason"] is None


def test_served_impressions_store_the_team_that_placed_each_item(key_client, built, experimenter):
    experiment = interleaving(experimenter)
    body = closeup(key_client, k=6).json()
    impressions.flush()
    batch = EventBatch.objects.filter(source="closeup").latest("id")
    ingestion.store_batch(batch.id)
    ids = dict(experiment.variants.values_list("key", "id"))
    logged = Event.objects.filter(request_id=body["request_id"]).order_by("position")
    assert [(e.pin_id, e.position, e.team) for e in logged] == [
        (i["pin_id"], i["position"], ids[i["team"]]) for i in body["items"]]


def test_a_failing_ranker_serves_the_other_list_unmerged_and_credits_nobody(key_client, built, experimenter,
                                                                             monkeypatch):
    interleaving(experimenter)
    from recommenders.retrievers import BoardCooccurrence

    def broken(*args, **kwargs):
        raise RuntimeError("index corrupted")

    monkeypatch.setattr(BoardCooccurrence, "related", broken)
    body = closeup(key_client).json()
    assert all("team" not in i for i in body["items"]) and len(body["items"]) == 10
    assert "interleaving off for this request" in body["fallback_reason"]
    assert "index corrupted" in body["fallback_reason"] and "popularity's list served unmerged" in body[
        "fallback_reason"]
    assert [s["recommender"] for s in body["served_by"]] == ["popularity"]
    models = current_models()
    expected = models.recommender("popularity").related(models.catalog.pin_index(5), models.catalog.history("user-3"),
                                                        10, [], models.user_topics(models.catalog.history("user-3")))
    assert [i["pin_id"] for i in body["items"]] == [int(models.catalog.pin_ids[p]) for p, _ in expected]


def test_a_ranking_layer_interleaves_two_rankers_over_the_same_candidates(key_client, ranker_built,  # noqa: F811
                                                                          experimenter):
    interleaving(experimenter, stage="ranking", control={"name": "ranker"}, treatment={"name": "ranker"})
    body = closeup(key_client).json()
    stages = [(s["stage"], s.get("team")) for s in body["served_by"]]
    assert stages == [("retrieval", None), ("ranking", "popularity"), ("ranking", "cooccurrence")]
    teams = [i["team"] for i in body["items"]]
    # The same ranker on both teams: each round's two picks are one of each team.
    assert all(sorted(teams[i:i + 2]) == ["cooccurrence", "popularity"] for i in range(0, 10, 2))


@pytest.mark.parametrize("variants, stage, field", [
    (1, "whole", "variants"),
    (3, "whole", "variants"),
    (2, "retrieval", "layer"),
    (2, "ranking", "variants[0].recommender"),  # popularity cannot rank
])
def test_designs_that_cannot_interleave_are_400_naming_the_field(admin_client_api, variants, stage, field):
    admin_client_api.post("/api/v1/layers", {"key": "l", "name": "L", "stage": stage}, format="json")
    names = ["popularity", "ranker", "ranker"] if stage != "ranking" else ["popularity", "ranker"]
    body = {"key": "x", "name": "X", "layer": "l", "design": "interleaving",
            "variants": [{"key": f"v{i}", "weight": round(100 / variants, 4) if i else 100 - round(
                100 / variants, 4) * (variants - 1), "is_control": i == 0, "recommender": {"name": names[i]}}
                         for i in range(variants)]}
    response = admin_client_api.post("/api/v1/experiments", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()


def test_an_unknown_design_is_400(admin_client_api):
    admin_client_api.post("/api/v1/layers", {"key": "l", "name": "L"}, format="json")
    response = admin_client_api.post("/api/v1/experiments", {
        "key": "x", "name": "X", "layer": "l", "design": "multileaving",
        "variants": [{"key": "a", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}},
                     {"key": "b", "weight": 50, "recommender": {"name": "pixie"}}]}, format="json")
    assert response.status_code == 400 and "design" in response.json()
