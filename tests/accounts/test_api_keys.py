import io
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.keys import hash_key
from accounts.models import ApiKey
from accounts.services import revoke_api_key


@pytest.mark.django_db
def test_create_api_key_prints_a_working_key_on_its_last_line(api_client):
    out = io.StringIO()
    call_command("create_api_key", "closeup-service", stdout=out, stderr=io.StringIO())
    key = out.getvalue().strip().splitlines()[-1]
    stored = ApiKey.objects.get(name="closeup-service")
    # Stored hashed: the row holds no trace of the secret itself.
    assert stored.hashed_key == hash_key(key)
    assert key.split("_", 2)[2] not in (stored.hashed_key, stored.prefix)
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    response = api_client.get("/api/v1/ping")
    assert response.status_code == 200
    assert response.json()["client"] == "closeup-service"


@pytest.mark.django_db
def test_create_api_key_with_blank_name_fails_with_one_line():
    with pytest.raises(CommandError, match="needs a name"):
        call_command("create_api_key", "  ")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [None, "Api-Key ", "Api-Key pp_00000000_not-a-real-secret", "Api-Key garbage", "Bearer abc"],
)
def test_missing_or_wrong_key_gets_401_or_403_and_no_data(api_client, client_key, header):
    if header:
        api_client.credentials(HTTP_AUTHORIZATION=header)
    response = api_client.get("/api/v1/ping")
    assert response.status_code in (401, 403)
    assert "client" not in response.json()
    assert response.json()["detail"]


@pytest.mark.django_db
def test_key_with_right_prefix_but_wrong_secret_is_refused(api_client, client_key):
    row, key = client_key
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key[:-4]}AAAA")
    assert api_client.get("/api/v1/ping").status_code == 401


@pytest.mark.django_db
def test_verified_key_costs_no_query_in_steady_state(key_client, django_assert_num_queries):
    assert key_client.get("/api/v1/ping").status_code == 200
    with django_assert_num_queries(0):
        for _ in range(20):
            assert key_client.get("/api/v1/ping").status_code == 200


@pytest.mark.django_db
def test_revoked_key_stops_working_within_the_cache_window(key_client, client_key, settings):
    settings.API_KEY_CACHE_SECONDS = 0.3
    assert key_client.get("/api/v1/ping").status_code == 200
    revoke_api_key(client_key[0])
    time.sleep(0.4)
    assert key_client.get("/api/v1/ping").status_code == 401


@pytest.mark.django_db
def test_admin_issues_and_revokes_keys_through_the_api(admin_user, api_client):
    api_client.force_login(admin_user)
    created = api_client.post("/api/v1/api-keys", {"name": "recs"}, format="json")
    assert created.status_code == 201
    key = created.json()["key"]
    listed = api_client.get("/api/v1/api-keys").json()
    assert [k["name"] for k in listed] == ["recs"]
    assert "key" not in listed[0]  # shown once only
    revoke = api_client.post(f"/api/v1/api-keys/{created.json()['prefix']}/revoke")
    assert revoke.status_code == 200 and revoke.json()["is_active"] is False

    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert client.get("/api/v1/ping").status_code == 401


@pytest.mark.django_db
def test_api_key_cannot_reach_management_endpoints(key_client):
    assert key_client.get("/api/v1/api-keys").status_code in (401, 403)
    assert key_client.get("/api/v1/me").status_code in (401, 403)
