"""Bad input gets a clear 4xx with field messages, never a 500."""

import pytest

from tests.conftest import as_user


@pytest.mark.django_db
def test_unknown_api_route_is_json_404(api_client):
    response = api_client.get("/api/v1/does-not-exist")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "does-not-exist" in response.json()["detail"]


@pytest.mark.django_db
def test_malformed_json_is_400_with_reason(admin_user):
    response = as_user(admin_user).post("/api/v1/api-keys", data=b'{"name": ', content_type="application/json")
    assert response.status_code == 400
    assert "Malformed JSON" in response.json()["detail"]


@pytest.mark.django_db
def test_invalid_utf8_is_400(admin_user):
    body = b'{"name": "\xff\xfe"}'
    response = as_user(admin_user).post("/api/v1/api-keys", data=body, content_type="application/json")
    assert response.status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, field, message",
    [
        ({}, "name", "This field is required."),
        ({"name": ["a", "list"]}, "name", "Not a valid string."),
        ({"name": "   "}, "name", "This field may not be blank."),
    ],
)
def test_wrong_fields_are_400_with_field_messages(admin_user, body, field, message):
    response = as_user(admin_user).post("/api/v1/api-keys", data=body, format="json")
    assert response.status_code == 400
    assert response.json()[field] == [message]


@pytest.mark.django_db
def test_body_over_the_limit_is_413(admin_user, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = as_user(admin_user).post(
        "/api/v1/api-keys", data={"name": "x" * 5000}, format="json"
    )
    assert response.status_code == 413
