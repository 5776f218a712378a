import io

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient


@pytest.mark.django_db
def test_drf_token_authenticates_management_api(viewer):
    out = io.StringIO()
    call_command("drf_create_token", viewer.username, stdout=out)
    token = out.getvalue().strip().split()[2]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.get("/api/v1/me")
    assert response.status_code == 200
    assert response.json()["username"] == viewer.username
    assert response.json()["roles"] == ["viewer"]


@pytest.mark.django_db
def test_wrong_token_is_401(viewer):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert "username" not in response.json()


@pytest.mark.django_db
def test_anonymous_gets_no_data():
    response = APIClient().get("/api/v1/me")
    assert response.status_code in (401, 403)
