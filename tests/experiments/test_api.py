"""The experiments REST API: create, validate, change, run; assignment for clients."""

import pytest

from experiments.models import AuditLog, Experiment
from tests.conftest import as_user
from tests.experiments.conftest import experiment_body
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def create(client, **overrides):
    return client.post("/api/v1/experiments", experiment_body(**overrides), format="json")


def test_experimenter_creates_a_layer_and_an_experiment_that_owns_the_whole_free_layer(experimenter):
    client = as_user(experimenter)
    layer = client.post("/api/v1/layers", {"key": "closeup-ranking", "name": "Ranking", "surface": "closeup"},
                        format="json")
    assert layer.status_code == 201, layer.json()
    response = create(client)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["layer_buckets"] == [0, 10_000]
    assert body["status"] == "draft"
    assert body["owner"] == experimenter.username
    assert [v["key"] for v in body["variants"]] == ["control", "ranker"]
    assert client.get("/api/v1/layers").json()[0]["experiments"][0]["key"] == "ranker-v2"


@pytest.mark.parametrize(
    "overrides, field, fragment",
    [
        ({"variants": [{"key": "a", "weight": 60, "is_control": True, "recommender": {"name": "popularity"}},
                       {"key": "b", "weight": 30, "recommender": {"name": "popularity"}}]}, "weights", "sum to 100"),
        ({"variants": [{"key": "a", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}},
                       {"key": "b", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}}]},
         "variants", "Exactly one variant must be the control; found 2"),
        ({"variants": [{"key": "a", "weight": 100, "is_control": True, "recommender": {"name": "popularity"}}]},
         "variants", "at least two variants"),
        ({"variants": [{"key": "a", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}},
                       {"key": "a", "weight": 50, "recommender": {"name": "popularity"}}]}, "variants", "repeated: a"),
        ({"layer": "no-such-layer"}, "layer", "does not exist"),
        ({"layer_buckets": [5000, 100]}, "layer_buckets", "0 <= start < end"),
        ({"traffic_percent": 120}, "traffic_percent", "less than or equal to 100"),
        ({"targeting": {"attribute": "country", "op": "like", "value": "US"}}, "targeting", "must be one of"),
        ({"key": "Not A Slug!"}, "key", "letters, digits, hyphens"),
        ({"variants": "two"}, "variants", "list"),
    ],
)
def test_invalid_experiments_get_400_saying_what_is_wrong(experimenter, layer, overrides, field, fragment):
    response = create(as_user(experimenter), **overrides)
    assert response.status_code == 400, response.json()
    messages = response.json()[field]
    text = " ".join(str(m) for m in (messages if isinstance(messages, list) else [messages]))
    assert fragment.lower() in text.lower(), messages
    assert not Experiment.objects.exists()


def test_overlapping_slice_is_refused_and_default_needs_a_free_layer(experimenter, layer):
    client = as_user(experimenter)
    assert create(client, key="first", layer_buckets=[0, 5000]).status_code == 201
    clash = create(client, key="second", layer_buckets=[4000, 8000])
    assert clash.status_code == 400
    assert "overlaps first [0, 5000)" in clash.json()["layer_buckets"][0]
    taken = create(client, key="third")
    assert taken.status_code == 400 and "partly taken" in taken.json()["layer_buckets"][0]
    assert create(client, key="fourth", layer_buckets=[5000, 10_000]).status_code == 201


def test_duplicate_key_is_400(experimenter, layer):
    client = as_user(experimenter)
    assert create(client, layer_buckets=[0, 100]).status_code == 201
    again = create(client, layer_buckets=[100, 200])
    assert again.status_code == 400 and "already exists" in again.json()["key"][0]


def test_lifecycle_follows_only_legal_moves(experimenter, layer):
    client = as_user(experimenter)
    create(client)

    def act(action, **body):
        return client.post(f"/api/v1/experiments/ranker-v2/{action}", body, format="json")

    assert act("pause").status_code == 400
    assert "Cannot pause an experiment that is draft; allowed now: start" in act("pause").json()["status"][0]
    assert act("start").json()["status"] == "running"
    assert act("pause").json()["status"] == "paused"
    assert act("start").json()["status"] == "running"
    assert act("stop").json()["status"] == "stopped"
    assert act("start").status_code == 400
    assert "Name the variant" in act("ship").json()["variant"][0]
    shipped = act("ship", variant="ranker").json()
    assert (shipped["status"], shipped["shipped_variant"]) == ("shipped", "ranker")
    assert act("stop").status_code == 400
    actions = list(AuditLog.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["create", "start", "pause", "start", "stop", "ship"]


def test_audit_log_records_who_and_before_after(experimenter, running_experiment):
    client = as_user(experimenter)
    assert client.patch("/api/v1/experiments/ranker-v2", {"traffic_percent": 40}, format="json").status_code == 200
    entry = AuditLog.objects.filter(action="update").get()
    assert entry.actor == experimenter
    assert (entry.before["traffic_percent"], entry.after["traffic_percent"]) == (100, 40)


def test_running_experiment_changes_only_what_may_change(experimenter, running_experiment):
    client = as_user(experimenter)
    url = "/api/v1/experiments/ranker-v2"
    ok = client.patch(url, {"traffic_percent": 50, "description": "ramp to 50%"}, format="json")
    assert ok.status_code == 200 and ok.json()["traffic_percent"] == 50
    for body, field in [({"salt": "x"}, "salt"), ({"layer": "other"}, "layer"), ({"variants": []}, "variants")]:
        response = client.patch(url, body, format="json")
        assert response.status_code == 400
        assert "cannot be changed" in response.json()[field][0]
    targeting = client.patch(url, {"targeting": {}}, format="json")
    assert targeting.status_code == 400
    assert "while the experiment is running" in targeting.json()["targeting"][0]
    assert client.patch(url, {"bogus": 1}, format="json").json()["bogus"] == ["Unknown field."]


def test_paused_experiment_rebalances_weights_minimally(experimenter, running_experiment):
    client = as_user(experimenter)
    client.post("/api/v1/experiments/ranker-v2/pause")
    bad = client.patch("/api/v1/experiments/ranker-v2", {"weights": {"control": 40, "ranker": 50}}, format="json")
    assert bad.status_code == 400 and "sum to 100" in bad.json()["weights"][0]
    ok = client.patch("/api/v1/experiments/ranker-v2", {"weights": {"control": 40, "ranker": 60}}, format="json")
    assert ok.status_code == 200
    running_experiment.refresh_from_db()
    assert running_experiment.allocation == [[0, 4000, "control"], [4000, 10000, "ranker"]]


def test_roles_and_ownership(experimenter, running_experiment, layer):
    viewer = as_user(UserFactory(role="viewer"))
    assert viewer.get("/api/v1/experiments").status_code == 200
    assert viewer.get("/api/v1/experiments/ranker-v2").json()["key"] == "ranker-v2"
    assert create(viewer, key="nope", layer_buckets=[0, 1]).status_code == 403
    assert viewer.post("/api/v1/experiments/ranker-v2/pause").status_code == 403
    assert viewer.patch("/api/v1/experiments/ranker-v2", {"description": "x"}, format="json").status_code == 403

    other = as_user(UserFactory(role="experimenter"))
    assert other.post("/api/v1/experiments/ranker-v2/pause").status_code == 403
    assert other.patch("/api/v1/experiments/ranker-v2", {"description": "x"}, format="json").status_code == 403

    admin = as_user(UserFactory(role="admin"))
    assert admin.post("/api/v1/experiments/ranker-v2/pause").status_code == 200


def test_management_api_needs_a_user(key_client, api_client, running_experiment):
    assert api_client.get("/api/v1/experiments").status_code == 401
    assert key_client.get("/api/v1/experiments").status_code in (401, 403)


def test_unknown_experiment_is_404(experimenter):
    client = as_user(experimenter)
    assert client.get("/api/v1/experiments/nope").status_code == 404
    assert client.post("/api/v1/experiments/nope/start").status_code == 404


# --- Client assignment -------------------------------------------------------------


def test_assignment_returns_the_variant_and_its_recommender(key_client, running_experiment):
    response = key_client.post("/api/v1/assignments", {"user_id": "u-1", "attributes": {"country": "US"},
                                                       "surface": "closeup"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == "u-1"
    [assignment] = body["assignments"]
    assert assignment["experiment"] == "ranker-v2" and assignment["layer"] == "closeup-ranking"
    expected = {"control": "popularity", "ranker": "pixie"}[assignment["variant"]]
    assert assignment["recommender"] == expected
    # Same answer every time.
    again = key_client.post("/api/v1/assignments", {"user_id": "u-1"}, format="json").json()
    assert again["assignments"] == body["assignments"]


def test_paused_experiment_assigns_nobody(key_client, running_experiment, experimenter):
    from experiments import services

    services.transition(running_experiment, "pause", actor=experimenter)
    from experiments.runtime import holder

    holder.invalidate()
    response = key_client.post("/api/v1/assignments", {"user_id": "u-1"}, format="json")
    assert response.json()["assignments"] == []


def test_assignment_costs_no_query_in_steady_state(key_client, running_experiment, django_assert_num_queries):
    key_client.post("/api/v1/assignments", {"user_id": "warm-up"}, format="json")
    with django_assert_num_queries(0):
        for i in range(50):
            assert key_client.post("/api/v1/assignments", {"user_id": f"u{i}"}, format="json").status_code == 200


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({}, "user_id", "This field is required."),
        ({"user_id": 42}, "user_id", "Must be a non-empty string of at most 255 characters, without NUL."),
        ({"user_id": ""}, "user_id", "Must be a non-empty string of at most 255 characters, without NUL."),
        ({"user_id": "x" * 300}, "user_id", "Must be a non-empty string of at most 255 characters, without NUL."),
        ({"user_id": "u", "attributes": [1]}, "attributes", "Must be an object."),
        ({"user_id": "u", "attributes": {"deep": {"x": 1}}}, "attributes", "Values must be strings"),
        ({"user_id": "u", "surface": "home"}, "surface", "Must be one of: closeup."),
        ([], "non_field_errors", "Expected a JSON object."),
    ],
)
def test_bad_assignment_requests_get_field_errors(key_client, body, field, message):
    response = key_client.post("/api/v1/assignments", body, format="json")
    assert response.status_code == 400
    assert response.json()[field][0].startswith(message)


def test_assignment_malformed_json_and_missing_key(key_client, api_client):
    bad = key_client.post("/api/v1/assignments", data=b'{"user_id":', content_type="application/json")
    assert bad.status_code == 400 and "Malformed JSON" in bad.json()["detail"]
    assert api_client.post("/api/v1/assignments", {"user_id": "u"}, format="json").status_code == 401


def test_batch_assignment_matches_single_calls(key_client, running_experiment):
    users = [{"user_id": f"b{i}"} for i in range(20)]
    batch = key_client.post("/api/v1/assignments/batch", {"users": users}, format="json")
    assert batch.status_code == 200
    singles = [key_client.post("/api/v1/assignments", u, format="json").json() for u in users]
    assert batch.json()["results"] == singles


def test_batch_assignment_limits_and_errors(key_client):
    too_many = key_client.post("/api/v1/assignments/batch", {"users": [{"user_id": "u"}] * 1001}, format="json")
    assert too_many.status_code == 400 and "At most 1000" in too_many.json()["users"][0]
    bad = key_client.post("/api/v1/assignments/batch", {"users": [{"user_id": "ok"}, {"user_id": 5}]}, format="json")
    assert bad.json() == {"users[1].user_id": ["Must be a non-empty string of at most 255 characters, without NUL."]}


def test_forced_qa_user_is_assigned_and_marked(experimenter, running_experiment, key_client):
    client = as_user(experimenter)
    response = client.patch("/api/v1/experiments/ranker-v2", {"forced_user_ids": {"ranker": ["qa-alice"]}},
                            format="json")
    assert response.status_code == 200
    from experiments.runtime import holder

    holder.invalidate()
    for _ in range(3):
        got = key_client.post("/api/v1/assignments", {"user_id": "qa-alice"}, format="json").json()
        assert got["assignments"][0]["variant"] == "ranker"
    clash = client.patch("/api/v1/experiments/ranker-v2",
                         {"forced_user_ids": {"ranker": ["qa"], "control": ["qa"]}}, format="json")
    assert clash.status_code == 400 and "forced into both" in clash.json()["forced_user_ids"][0]


def test_holdout_users_get_no_assignment(key_client, running_experiment):
    from experiments import services
    from experiments.assignment import HoldoutConfig
    from experiments.runtime import holder

    holdout = services.set_holdout(surface="closeup", percent=20)
    holder.invalidate()
    config = HoldoutConfig(salt=holdout.salt, percent=20)
    held = [f"h{i}" for i in range(300) if config.holds_out(f"h{i}")]
    free = [f"h{i}" for i in range(300) if not config.holds_out(f"h{i}")]
    assert held and free
    for user in held[:20]:
        assert key_client.post("/api/v1/assignments", {"user_id": user}, format="json").json()["assignments"] == []
    for user in free[:20]:
        assert key_client.post("/api/v1/assignments", {"user_id": user}, format="json").json()["assignments"]


@pytest.mark.parametrize(
    "recommender, fragment",
    [
        ({"name": "nope"}, "Unknown recommender 'nope'"),
        ({"name": "pixie", "params": {"steps": -5}}, "steps must be at least"),
        ({"name": "pixie", "params": {"walk": 3}}, "Unknown params for pixie: walk"),
        ({"name": "popularity", "params": {"same_topic": "yes"}}, "same_topic must be bool"),
    ],
)
def test_variant_recommender_configs_are_validated_against_the_registry(experimenter, layer, recommender, fragment):
    variants = [{"key": "control", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}},
                {"key": "treatment", "weight": 50, "recommender": recommender}]
    response = create(as_user(experimenter), variants=variants)
    assert response.status_code == 400
    assert fragment in " ".join(response.json()["variants[1].recommender"])
