"""Model versions on the closeup: a variant serves the version it pins, the first start
freezes the active version into variants that pin none (a later build changes nothing
for them), a pinned version whose files are gone falls back and says so, versions
nobody pins any more are unloaded, and the number held is bounded."""

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from experiments import services as experiment_services
from experiments.models import AuditLog, Variant
from recommenders import services as recommender_services
from recommenders.base import Recommender
from recommenders.models import ModelVersion, Pin
from recommenders.services import load_catalog
from recommenders.serving import current_models
from recommenders.serving import holder as models_holder
from tests.conftest import as_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_every_request(settings):
    settings.RECOMMENDER_TIMEOUT_MS = 30_000
    settings.ASSIGNMENT_CONFIG_CHECK_SECONDS = 0


@pytest.fixture
def two_versions(world, models_dir):
    """Two builds of popularity and pixie on the same pins; the second is active."""
    first = recommender_services.build_all(["popularity", "pixie"])[0].version
    second = recommender_services.build_all(["popularity", "pixie"])[0].version
    return first, second


def started(experimenter, control: dict, treatment: dict, key="versions"):
    layer = experiment_services.create_layer(key=f"layer-{key}", name=key)
    experiment = experiment_services.create_experiment(
        actor=experimenter, layer=layer, key=key, name=key,
        variants=[{"key": "control", "weight": 50, "is_control": True, "recommender": control,
                   "forced_user_ids": ["in-control"]},
                  {"key": "treatment", "weight": 50, "recommender": treatment, "forced_user_ids": ["in-treatment"]}])
    return experiment_services.transition(experiment, "start", actor=experimenter)


def served(client, user: str, pin_id=5) -> dict:
    response = client.get(f"/api/v1/closeup/{pin_id}", {"user_id": user, "k": 10})
    assert response.status_code == 200
    return response.json()


def stage(body: dict) -> tuple:
    (only,) = body["served_by"]
    return only["recommender"], only["version"], only["fallback_reason"]


def test_two_pinned_versions_of_one_recommender_are_served_as_pinned(key_client, two_versions, experimenter):
    first, second = two_versions
    started(experimenter, {"name": "popularity", "version": first}, {"name": "popularity", "version": second})
    assert stage(served(key_client, "in-control")) == ("popularity", first, None)
    assert stage(served(key_client, "in-treatment")) == ("popularity", second, None)


def test_the_first_start_freezes_the_active_version_and_a_new_build_changes_nothing(key_client, two_versions,
                                                                                      experimenter):
    _, active = two_versions
    experiment = started(experimenter, {"name": "popularity"}, {"name": "pixie", "params": {"steps": 5000}})
    frozen = {v.key: v.recommender for v in Variant.objects.filter(experiment=experiment)}
    assert frozen == {"control": {"name": "popularity", "version": active},
                      "treatment": {"name": "pixie", "params": {"steps": 5000}, "version": active}}
    # The audit trail says which version the start froze.
    audited = AuditLog.objects.get(experiment=experiment, action="start")
    assert [v["recommender"].get("version") for v in audited.before["variants"]] == [None, None]
    assert [v["recommender"]["version"] for v in audited.after["variants"]] == [active, active]
    before = served(key_client, "in-treatment")

    newer = recommender_services.build_all(["popularity", "pixie"])[0].version
    assert ModelVersion.objects.get(name="pixie", is_active=True).version == newer != active
    after = served(key_client, "in-treatment")
    assert stage(after) == ("pixie", active, None)
    assert after["items"] == before["items"]
    assert stage(served(key_client, "in-control")) == ("popularity", active, None)
    assert current_models().active["popularity"] == newer  # what everyone else now gets


def test_a_pinned_version_whose_files_are_gone_falls_back_and_says_so(key_client, two_versions, experimenter):
    first, second = two_versions
    started(experimenter, {"name": "popularity"}, {"name": "pixie", "version": first})
    shutil.rmtree(ModelVersion.objects.get(name="pixie", version=first).path)
    body = served(key_client, "in-treatment")
    recommender, version, reason = stage(body)
    assert (recommender, version) == ("popularity", second)
    assert reason.startswith(f"pixie@{first} is not loaded: its files cannot be read")
    assert body["fallback_reason"] == f"whole: {reason}"
    assert body["items"]


def test_a_version_nobody_pins_any_more_is_unloaded(key_client, two_versions, experimenter, viewer):
    first, second = two_versions
    experiment = started(experimenter, {"name": "popularity"}, {"name": "popularity", "version": first})
    served(key_client, "in-treatment")
    assert ("popularity", first) in current_models().loaded

    def loaded_bytes() -> dict:
        body = as_user(viewer).get("/api/v1/recommenders").json()
        popularity = next(r for r in body if r["name"] == "popularity")
        return {v["version"]: v["loaded_bytes"] for v in popularity["versions"]}

    held = loaded_bytes()
    assert held[first] > 0 and held[second] > 0
    experiment_services.transition(experiment, "stop", actor=experimenter)
    assert stage(served(key_client, "in-treatment")) == ("popularity", second, None)
    assert ("popularity", first) not in current_models().loaded
    assert ("popularity", second) in current_models().loaded
    assert loaded_bytes() == {first: None, second: held[second]}


def test_more_pinned_versions_than_the_bound_are_refused_at_start(key_client, world, models_dir, experimenter,
                                                                  settings):
    versions = [recommender_services.build_all(["popularity"])[0].version for _ in range(3)]
    settings.RECOMMENDER_MAX_PINNED_VERSIONS = 1
    # The active version does not count: one other fits.
    started(experimenter, {"name": "popularity", "version": versions[0]}, {"name": "popularity"}, key="first")
    layer = experiment_services.create_layer(key="layer-second", name="second")
    experiment_services.create_experiment(
        actor=experimenter, layer=layer, key="second", name="second",
        variants=[{"key": "control", "weight": 50, "is_control": True,
                   "recommender": {"name": "popularity", "version": versions[1]}},
                  {"key": "treatment", "weight": 50, "recommender": {"name": "popularity"}}])
    refused = as_user(experimenter).post("/api/v1/experiments/second/start")
    assert refused.status_code == 400
    assert "RECOMMENDER_MAX_PINNED_VERSIONS allows 1" in str(refused.json()["variants"])
    assert f"popularity@{versions[1]}" in str(refused.json()["variants"])
    assert stage(served(key_client, "in-control")) == ("popularity", versions[0], None)


def test_past_the_bound_the_newest_experiments_pins_fall_back_and_say_why(key_client, world, models_dir,
                                                                           experimenter, settings):
    versions = [recommender_services.build_all(["popularity"])[0].version for _ in range(3)]
    started(experimenter, {"name": "popularity", "version": versions[0]}, {"name": "popularity",
                                                                             "version": versions[1]})
    # The bound was lowered after the start (a restart with a new setting).
    settings.RECOMMENDER_MAX_PINNED_VERSIONS = 1
    models_holder.invalidate()
    assert stage(served(key_client, "in-control")) == ("popularity", versions[0], None)
    recommender, version, reason = stage(served(key_client, "in-treatment"))
    assert (recommender, version) == ("popularity", versions[2])
    assert "RECOMMENDER_MAX_PINNED_VERSIONS (1)" in reason and reason.startswith(f"popularity@{versions[1]}")


def test_a_version_built_on_other_pins_serves_the_same_pins_as_it_did(key_client, world, models_dir, experimenter):
    old = recommender_services.build_all(["popularity"])[0].version
    # Pin 1 goes: every other pin's index moves in the new catalog.
    Pin.objects.filter(id=1).delete()
    Pin.objects.create(id=10**6, title="new", topic=0, created_at=datetime.now(UTC))
    new = recommender_services.build_all(["popularity"])[0].version
    catalogs = {v: ModelVersion.objects.get(name="catalog", version=v).metrics["catalog"] for v in (old, new)}
    assert catalogs[old] != catalogs[new]
    started(experimenter, {"name": "popularity", "version": old}, {"name": "popularity"})

    body = served(key_client, "in-control")
    assert stage(body) == ("popularity", old, None)
    # What the old version says on its own pins, less the pin that is gone.
    folder = Path(ModelVersion.objects.get(name="popularity", version=old).path)
    own = load_catalog(Path(ModelVersion.objects.get(name="catalog", version=old).path))
    alone = Recommender.load(folder).related(own.pin_index(5), [], 10)
    expected = [int(own.pin_ids[i]) for i, _ in alone if int(own.pin_ids[i]) != 1]
    assert [i["pin_id"] for i in body["items"]] == expected
