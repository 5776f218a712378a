"""The closeup's pipeline: attributes for targeting (`attr.` parameters, the same rules
as POST /assignments), retrieval and ranking layers that compose on the same users, a
whole-list experiment that takes precedence, and exposures only for the experiments
whose variant shaped the response."""

import pytest

from experiments import services as experiment_services
from experiments.exposures import buffer
from experiments.models import Exposure
from recommenders import services as recommender_services
from recommenders.serving import current_models
from tests.conftest import as_user

pytestmark = pytest.mark.django_db

CONTROL_AND_TREATMENT = ("control", "treatment")


@pytest.fixture(autouse=True)
def _generous_deadline(settings):
    settings.RECOMMENDER_TIMEOUT_MS = 30_000


@pytest.fixture
def ranker_built(world, models_dir):
    return recommender_services.build_all(["popularity", "board_cooccurrence", "pixie", "ranker"])[0].version


def start(experimenter, layer_key: str, stage: str, key: str, control: dict, treatment: dict, forced=(),
          targeting=None, weights=(50, 50)):
    layer = experiment_services.create_layer(key=layer_key, name=layer_key, stage=stage)
    experiment = experiment_services.create_experiment(
        actor=experimenter, layer=layer, key=key, name=key, targeting=targeting or {},
        variants=[{"key": "control", "weight": weights[0], "is_control": True, "recommender": control},
                  {"key": "treatment", "weight": weights[1], "recommender": treatment,
                   "forced_user_ids": list(forced)}])
    experiment_services.transition(experiment, "start", actor=experimenter)
    return experiment


def closeup(client, pin_id=5, **params):
    params.setdefault("k", 10)
    return client.get(f"/api/v1/closeup/{pin_id}", params)


# Tests that read exposures commit their data (transaction=True): the buffer's own thread
# may write a batch first, on a connection of its own, which must see the test's variants.
committed = pytest.mark.django_db(transaction=True)


def exposed(experiment_key: str) -> dict[str, dict]:
    buffer.flush()
    return {e.user_id: e.attributes for e in Exposure.objects.filter(experiment__key=experiment_key)}


@committed
def test_attributes_target_the_closeup_exactly_as_they_target_assignments(key_client, built, experimenter):
    rule = {"all": [{"attribute": "country", "op": "in", "value": ["FR", "DE"]},
                    {"attribute": "age", "op": "gte", "value": 18},
                    {"not": {"attribute": "beta", "op": "eq", "value": True}}]}
    start(experimenter, "targeted", "whole", "targeted", {"name": "popularity"}, {"name": "pixie"}, targeting=rule)
    people = [{"country": c, "age": a, "beta": b} for c in ("FR", "DE", "US") for a in (17, 18, 40.5)
              for b in (True, False)]
    in_closeup = {}
    for i, attributes in enumerate(people):
        user = f"person-{i}"
        assigned = key_client.post("/api/v1/assignments", {"user_id": user, "attributes": attributes,
                                                           "surface": "closeup"}, format="json").json()
        query = {f"attr.{name}": str(value).lower() if isinstance(value, bool) else str(value)
                 for name, value in attributes.items()}
        body = closeup(key_client, user_id=user, **query).json()
        assert [(a["experiment"], a["variant"]) for a in body["assignments"]] == \
               [(a["experiment"], a["variant"]) for a in assigned["assignments"]], attributes
        in_closeup[user] = bool(body["assignments"])
    # The rule let some through and kept some out: the comparison above meant something.
    assert 0 < sum(in_closeup.values()) < len(people)
    # The closeup's exposures keep the typed attributes, for segments.
    kept = exposed("targeted")
    first = next(u for u, inside in in_closeup.items() if inside)
    assert kept[first] == people[int(first.split("-")[1])]


@pytest.mark.parametrize(("query", "field"), [
    ({"attr." + "x" * 65: "1"}, "attr." + "x" * 65),
    ({"attr.": "1"}, "attr."),
    ({f"attr.a{i}": "1" for i in range(33)}, "attributes"),
    ({"attr.note": "y" * 257}, "attr.note"),
])
def test_bad_attributes_are_400_naming_the_parameter(key_client, built, query, field):
    response = closeup(key_client, user_id="u1", **query)
    assert response.status_code == 400
    assert field in response.json()


@committed
def test_retrieval_and_ranking_experiments_compose_on_the_same_user(key_client, ranker_built, experimenter):
    start(experimenter, "retrieval", "retrieval", "sources", {"name": "popularity"},
          {"name": "board_cooccurrence"}, forced=["both"])
    start(experimenter, "ranking", "ranking", "rankers", {"name": "ranker", "params": {"candidates_per_source": 50}},
          {"name": "ranker"}, forced=["both"])
    body = closeup(key_client, user_id="both").json()
    assert body["assignments"] == [{"experiment": "sources", "variant": "treatment", "layer": "retrieval"},
                                   {"experiment": "rankers", "variant": "treatment", "layer": "ranking"}]
    assert [(s["stage"], s["recommender"], s["version"], s["fallback_reason"]) for s in body["served_by"]] == [
        ("retrieval", "board_cooccurrence", ranker_built, None), ("ranking", "ranker", ranker_built, None)]
    # The grid is the ranker's order of board co-occurrence's candidates.
    models = current_models()
    pin = models.catalog.pin_index(5)
    candidates = [i for i, _ in models.recommender("board_cooccurrence").related(pin, [], 200)]
    expected = models.recommender("ranker").rank(candidates, pin, [], 10)
    assert [i["pin_id"] for i in body["items"]] == [int(models.catalog.pin_ids[i]) for i, _ in expected]
    assert set(body["items"][0]) == {"pin_id", "position", "score"}
    assert [i for i, _ in expected] != candidates[:10]  # the ranker changed the order: it did something
    assert "both" in exposed("sources") and "both" in exposed("rankers")


def test_a_ranking_experiment_alone_ranks_the_default_candidates(key_client, ranker_built, experimenter):
    start(experimenter, "ranking", "ranking", "rankers", {"name": "ranker"}, {"name": "ranker"}, forced=["solo"])
    body = closeup(key_client, user_id="solo").json()
    assert [a["experiment"] for a in body["assignments"]] == ["rankers"]
    assert [(s["stage"], s["recommender"]) for s in body["served_by"]] == [("retrieval", "popularity"),
                                                                           ("ranking", "ranker")]


@committed
def test_a_whole_list_experiment_takes_precedence_and_only_it_gets_the_exposure(key_client, ranker_built,
                                                                                 experimenter):
    start(experimenter, "ranking", "ranking", "rankers", {"name": "ranker"}, {"name": "ranker"}, forced=["u-both"])
    start(experimenter, "whole", "whole", "lists", {"name": "popularity"}, {"name": "pixie"}, forced=["u-both"])
    body = closeup(key_client, user_id="u-both").json()
    assert body["assignments"] == [{"experiment": "lists", "variant": "treatment", "layer": "whole"}]
    assert [(s["stage"], s["recommender"]) for s in body["served_by"]] == [("whole", "pixie")]
    # The ranker never saw this user's request: no exposure dilutes its analysis.
    assert "u-both" in exposed("lists")
    assert "u-both" not in exposed("rankers")
    # POST /assignments still reports both: a client asking which variants a user is in.
    assigned = key_client.post("/api/v1/assignments", {"user_id": "u-both", "surface": "closeup"},
                               format="json").json()
    assert {a["experiment"] for a in assigned["assignments"]} == {"lists", "rankers"}


def test_a_broken_ranker_falls_back_to_the_retrieval_order_and_says_so(key_client, built, experimenter):
    # The ranker was never built: the ranking stage cannot run.
    start(experimenter, "ranking", "ranking", "rankers", {"name": "ranker"}, {"name": "ranker"}, forced=["u"])
    body = closeup(key_client, user_id="u").json()
    ranking = body["served_by"][1]
    assert ranking["stage"] == "ranking" and "no active built version" in ranking["fallback_reason"]
    assert body["fallback_reason"].startswith("ranking: ")
    models = current_models()
    default = models.recommender("popularity").related(models.catalog.pin_index(5), [], 10)
    assert [i["pin_id"] for i in body["items"]] == [int(models.catalog.pin_ids[i]) for i, _ in default]


@pytest.mark.parametrize(("stage", "recommender", "fragment"), [
    ("ranking", "popularity", "cannot serve the ranking stage"),
    ("retrieval", "ranker", "cannot serve the retrieval stage"),
])
def test_a_recommender_in_a_stage_it_cannot_serve_is_400(experimenter, stage, recommender, fragment):
    layer = experiment_services.create_layer(key="staged", name="Staged", stage=stage)
    response = as_user(experimenter).post("/api/v1/experiments", {
        "key": "misfit", "name": "Misfit", "layer": layer.key, "surface": "closeup",
        "variants": [{"key": "control", "weight": 50, "is_control": True, "recommender": {"name": recommender}},
                     {"key": "treatment", "weight": 50, "recommender": {"name": recommender}}]}, format="json")
    assert response.status_code == 400
    assert fragment in str(response.json()["variants[0].recommender"])


def test_layers_have_a_stage(experimenter):
    client = as_user(experimenter)
    created = client.post("/api/v1/layers", {"key": "rank", "name": "Ranking", "surface": "closeup",
                                             "stage": "ranking"}, format="json")
    assert created.status_code == 201 and created.json()["stage"] == "ranking"
    plain = client.post("/api/v1/layers", {"key": "plain", "name": "Plain"}, format="json").json()
    assert plain["stage"] == "whole"
    bad = client.post("/api/v1/layers", {"key": "bad", "name": "Bad", "stage": "reranking"}, format="json")
    assert bad.status_code == 400 and "stage" in bad.json()


@pytest.mark.parametrize(("text", "value"), [
    ("30", 30), ("-2", -2), ("40.5", 40.5), ("true", True), ("false", False),
    # Not as JSON would write a number: kept as written, so a string rule still matches.
    ("02134", "02134"), ("+5", "+5"), ("1.50", "1.50"), ("1e3", "1e3"), ("1_000", "1_000"), ("٣", "٣"),
    ("nan", "nan"), ("FR", "FR"), ("", ""),
])
def test_attribute_values_read_as_json_would(text, value):
    from serving.api.views import attribute_value

    got = attribute_value(text)
    assert got == value and type(got) is type(value)


def test_a_nul_in_attributes_is_refused_by_closeup_and_assignments(key_client, built):
    assert closeup(key_client, user_id="u", **{"attr.x": "a\x00b"}).status_code == 400
    assert closeup(key_client, user_id="u", **{"attr.x\x00": "1"}).status_code == 400
    response = key_client.post("/api/v1/assignments", {"user_id": "u", "attributes": {"x": "a\x00"}}, format="json")
    assert response.status_code == 400 and "NUL" in str(response.json()["attributes"])


def test_a_qa_user_forced_into_a_ranking_variant_sees_it_over_a_whole_list_experiment(key_client, ranker_built,
                                                                                        experimenter):
    start(experimenter, "ranking", "ranking", "rankers", {"name": "ranker"}, {"name": "ranker"}, forced=["qa"])
    # Everyone hashes into this whole-list experiment (it owns its whole layer); qa is not forced there.
    start(experimenter, "whole", "whole", "lists", {"name": "popularity"}, {"name": "pixie"})
    body = closeup(key_client, user_id="qa").json()
    assert [a["experiment"] for a in body["assignments"]] == ["rankers"]
    assert body["served_by"][-1]["recommender"] == "ranker"
