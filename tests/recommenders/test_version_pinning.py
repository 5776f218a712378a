"""Pinning a model version in a variant or a surface default: a version that does not
exist, or is not a string, is a 400 naming the field; a real one is kept as given."""

import pytest

from experiments import services as experiment_services
from recommenders import services as recommender_services
from tests.conftest import as_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def built_version(world, models_dir):
    return recommender_services.build_all(["popularity"])[0].version


def create(client, treatment: dict):
    experiment_services.create_layer(key="pins", name="Pins")
    return client.post("/api/v1/experiments", {
        "key": "pinned", "name": "Pinned", "layer": "pins", "surface": "closeup",
        "variants": [{"key": "control", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}},
                     {"key": "treatment", "weight": 50, "recommender": treatment}]}, format="json")


def test_an_unknown_version_is_400_naming_the_variant(experimenter, built_version):
    response = create(as_user(experimenter), {"name": "popularity", "version": "19990101T000000"})
    assert response.status_code == 400
    message = str(response.json()["variants[1].recommender"])
    assert "no version '19990101T000000'" in message and built_version in message


def test_a_version_of_another_recommender_is_400(experimenter, built_version):
    # pixie was never built: popularity's version is not pixie's.
    response = create(as_user(experimenter), {"name": "pixie", "version": built_version})
    assert response.status_code == 400 and "pixie has no version" in str(response.json()["variants[1].recommender"])


def test_a_real_version_is_kept_as_pinned(experimenter, built_version):
    response = create(as_user(experimenter), {"name": "popularity", "version": built_version})
    assert response.status_code == 201
    assert response.json()["variants"][1]["recommender"]["version"] == built_version


def test_a_surface_default_pins_a_version_or_is_400(admin_user, built_version):
    admin = as_user(admin_user)
    bad = admin.patch("/api/v1/surfaces/closeup", {"stage": "whole",
                                                   "recommender": {"name": "popularity", "version": "nope"}},
                      format="json")
    assert bad.status_code == 400 and "no version 'nope'" in str(bad.json()["recommender"])
    not_text = admin.patch("/api/v1/surfaces/closeup", {"stage": "whole",
                                                        "recommender": {"name": "popularity", "version": 7}},
                           format="json")
    assert not_text.status_code == 400 and "version" in str(not_text.json()["recommender"])
    good = admin.patch("/api/v1/surfaces/closeup", {"stage": "whole",
                                                    "recommender": {"name": "popularity", "version": built_version}},
                       format="json")
    assert good.status_code == 200
    assert good.json()["defaults"][0]["recommender"] == {"name": "popularity", "params": {},
                                                         "version": built_version}


def test_the_list_shows_each_versions_build_and_offline_fields(viewer, built_version):
    body = as_user(viewer).get("/api/v1/recommenders").json()
    (version,) = next(r for r in body if r["name"] == "popularity")["versions"]
    assert {"version", "built_at", "active", "metrics", "loaded_bytes"} <= set(version)
    assert version["version"] == built_version and version["active"] is True
    # Nothing served yet in this process: nothing held.
    assert version["loaded_bytes"] is None
