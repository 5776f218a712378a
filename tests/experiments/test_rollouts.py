"""Ship in steps: `{"variant", "rollout": [10, 50, 100], "hold_hours"}` serves the shipped
config to a growing share of users in no experiment, each step visible on the
experiment and the surface, stepped up by the schedule once held, or by a person, and
stoppable; the last step makes it the stage's default."""

from datetime import timedelta

import pytest
from django.utils import timezone

from experiments import rollouts, services
from experiments.assignment import bucket_for
from experiments.models import AuditLog, Rollout
from recommenders import services as recommender_services
from tests.conftest import as_user

pytestmark = pytest.mark.django_db

USERS = [f"outsider-{i}" for i in range(400)]


def _stopped(experimenter, key="rolling", stage="whole", names=("popularity", "board_cooccurrence")):
    layer = services.create_layer(key=f"layer-{key}", name=key, stage=stage)
    experiment = services.create_experiment(
        actor=experimenter, layer=layer, key=key, name=key,
        variants=[{"key": "control", "weight": 50, "is_control": True, "recommender": {"name": names[0]}},
                  {"key": "treatment", "weight": 50, "recommender": {"name": names[1]}}])
    services.transition(experiment, "start", actor=experimenter)
    services.transition(experiment, "stop", actor=experimenter)
    return experiment


def _served(key_client, users=USERS) -> dict[str, str]:
    return {u: key_client.get(f"/api/v1/closeup/5?user_id={u}&k=3").json()["served_by"][0]["recommender"]
            for u in users}


def test_a_rollout_reaches_a_growing_share_then_becomes_the_default(key_client, experimenter, viewer, world,
                                                                    models_dir, settings):
    settings.ASSIGNMENT_CONFIG_CHECK_SECONDS = 0
    recommender_services.build_all(["popularity", "board_cooccurrence"])
    experiment = _stopped(experimenter)
    client = as_user(experimenter)
    shipped = client.post(f"/api/v1/experiments/{experiment.key}/ship",
                          {"variant": "treatment", "rollout": [10, 50, 100], "hold_hours": 6}, format="json")
    assert shipped.status_code == 200, shipped.json()
    body = shipped.json()
    assert body["status"] == "shipped" and body["shipped_variant"] == "treatment"
    assert body["rollout"]["status"] == "rolling" and body["rollout"]["percent"] == 10
    assert body["rollout"]["step"] == 1 and body["rollout"]["hold_hours"] == 6

    # The default has not changed; the rollout shows on the surface.
    surface = as_user(viewer).get("/api/v1/surfaces/closeup").json()
    assert surface["defaults"][0]["recommender"]["name"] == "popularity"
    assert [r["percent"] for r in surface["rollouts"]] == [10]

    first = _served(key_client)
    reached = {u for u, name in first.items() if name == "board_cooccurrence"}
    assert set(first.values()) == {"popularity", "board_cooccurrence"}
    assert 0.05 < len(reached) / len(USERS) < 0.16

    # Not yet held long enough: the schedule leaves it; once held, it steps up.
    assert rollouts.advance_due() == 0
    Rollout.objects.update(step_started_at=timezone.now() - timedelta(hours=6, seconds=1))
    assert rollouts.advance_due() == 1
    second = _served(key_client)
    reached_now = {u for u, name in second.items() if name == "board_cooccurrence"}
    assert reached <= reached_now, "a step up never takes the shipped config away from a user"
    assert 0.4 < len(reached_now) / len(USERS) < 0.6

    # A person steps it up: the last step is the ship itself.
    done = client.post(f"/api/v1/experiments/{experiment.key}/rollout/advance")
    assert done.status_code == 200 and done.json()["rollout"]["status"] == "done"
    assert set(_served(key_client, USERS[:30]).values()) == {"board_cooccurrence"}
    surface = as_user(viewer).get("/api/v1/surfaces/closeup").json()
    assert surface["defaults"][0]["recommender"]["name"] == "board_cooccurrence" and surface["rollouts"] == []
    steps = [(a.before, a.after) for a in AuditLog.objects.filter(experiment=experiment, action="rollout")
             .order_by("at", "id")]
    assert [(b["percent"], a["percent"]) for b, a in steps] == [(10, 50), (50, 100)]


def test_a_stopped_rollout_leaves_the_default_as_it_was(key_client, experimenter, world, models_dir, settings):
    settings.ASSIGNMENT_CONFIG_CHECK_SECONDS = 0
    recommender_services.build_all(["popularity", "board_cooccurrence"])
    experiment = _stopped(experimenter)
    client = as_user(experimenter)
    client.post(f"/api/v1/experiments/{experiment.key}/ship", {"variant": "treatment", "rollout": [50, 100]},
                format="json")
    assert "board_cooccurrence" in _served(key_client, USERS[:60]).values()
    stopped = client.post(f"/api/v1/experiments/{experiment.key}/rollout/stop")
    assert stopped.status_code == 200 and stopped.json()["rollout"]["status"] == "stopped"
    assert set(_served(key_client, USERS[:60]).values()) == {"popularity"}
    # A stopped rollout neither moves on schedule nor can be stepped up.
    Rollout.objects.update(step_started_at=timezone.now() - timedelta(days=30))
    assert rollouts.advance_due() == 0
    again = client.post(f"/api/v1/experiments/{experiment.key}/rollout/advance")
    assert again.status_code == 400 and "stopped already" in again.json()["rollout"][0]


def test_rollout_users_are_chosen_by_their_own_hash(experimenter):
    experiment = _stopped(experimenter)
    services.transition(experiment, "ship", actor=experimenter, variant="treatment", rollout=[20, 100])
    rollout = Rollout.objects.get()
    from experiments.selectors import load_assignment_config

    config = load_assignment_config().surfaces["closeup"]
    for user in USERS[:100]:
        expected = bucket_for(user, rollout.salt) < 2000
        assert (config.defaults_for(user).get("whole", {}).get("name") == "board_cooccurrence") == expected


@pytest.mark.parametrize("body, field, fragment", [
    ({"rollout": [50, 10, 100]}, "rollout", "must go up"),
    ({"rollout": [10, 50]}, "rollout", "last step must be 100"),
    ({"rollout": [0, 100]}, "rollout", "above 0"),
    ({"rollout": "10,50,100"}, "rollout", "Give 1 to 10"),
    ({"rollout": [10, "x", 100]}, "rollout", "a number"),
    ({"rollout": [10, 100], "hold_hours": -1}, "hold_hours", "above 0"),
    ({"rollout": [10, 100], "hold_hours": "soon"}, "hold_hours", "a number"),
])
def test_bad_rollouts_are_400_naming_the_field_and_ship_nothing(experimenter, body, field, fragment):
    experiment = _stopped(experimenter)
    response = as_user(experimenter).post(f"/api/v1/experiments/{experiment.key}/ship",
                                          {"variant": "treatment", **body}, format="json")
    assert response.status_code == 400
    assert fragment in " ".join(response.json()[field])
    experiment.refresh_from_db()
    assert experiment.status == "stopped" and not Rollout.objects.exists()


def test_one_rollout_per_stage_at_a_time(experimenter):
    first = _stopped(experimenter, key="first")
    second = _stopped(experimenter, key="second")
    services.transition(first, "ship", actor=experimenter, variant="treatment", rollout=[10, 100])
    response = as_user(experimenter).post(f"/api/v1/experiments/{second.key}/ship", {"variant": "treatment"},
                                          format="json")
    assert response.status_code == 400
    assert "first's treatment is being rolled out on the whole stage" in response.json()["variant"][0]
    second.refresh_from_db()
    assert second.status == "stopped"


def test_the_experiment_page_says_what_shipped_and_offers_stop(client, experimenter):
    experiment = _stopped(experimenter)
    services.transition(experiment, "ship", actor=experimenter, variant="treatment", rollout=[10, 50, 100])
    client.force_login(experimenter)
    page = client.get(f"/experiments/{experiment.key}/").content.decode()
    assert "Shipped treatment" in page and f"by {experimenter.username}" in page
    assert "<strong>10%</strong> of users in no experiment" in page and "Stop the rollout" in page
    client.post(f"/experiments/{experiment.key}/rollout/stop")
    page = client.get(f"/experiments/{experiment.key}/").content.decode()
    assert "rollout stopped at 10%" in page and "Stop the rollout" not in page
