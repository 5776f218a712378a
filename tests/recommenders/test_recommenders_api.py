"""GET /api/v1/recommenders: every registered recommender with its built versions, newest
first, and which one is active."""

import pytest

from recommenders import registry
from recommenders import services as recommender_services
from tests.conftest import as_user

pytestmark = pytest.mark.django_db


def test_each_recommender_lists_its_versions_newest_first(viewer, world, models_dir):
    first = recommender_services.build_all(["popularity"])[0].version
    second = recommender_services.build_all(["popularity"])[0].version
    body = as_user(viewer).get("/api/v1/recommenders").json()
    assert [r["name"] for r in body] == registry.names()
    popularity = next(r for r in body if r["name"] == "popularity")
    assert [(v["version"], v["active"]) for v in popularity["versions"]] == [(second, True), (first, False)]
    assert popularity["stages"] == ["whole", "retrieval"] and popularity["description"]
    ranker = next(r for r in body if r["name"] == "ranker")
    assert ranker["versions"] == [] and ranker["stages"] == ["whole", "ranking"]


def test_clients_and_strangers_get_no_list(key_client, api_client):
    assert key_client.get("/api/v1/recommenders").status_code in (401, 403)
    assert api_client.get("/api/v1/recommenders").status_code in (401, 403)
