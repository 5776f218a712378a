"""Hostile input gets a clear 4xx, never a 500, and nothing it carries executes."""

import json
import uuid
from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from experiments import services
from tests.conftest import as_user

pytestmark = pytest.mark.django_db

SQL = "x'); DROP TABLE experiments_event; --"
HTML = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"


def _event(**over):
    e = {"event_id": str(uuid.uuid4()), "user_id": "u", "type": "click", "pin_id": 1, "position": 0,
         "timestamp": datetime.now(UTC).isoformat()}
    e.update(over)
    return e


def test_deeply_nested_json_is_a_400(key_client):
    body = "[" * 100_000 + "]" * 100_000
    r = key_client.post("/api/v1/events", body, content_type="application/json")
    assert r.status_code == 400


def test_non_utf8_bytes_are_a_400(key_client):
    r = key_client.post("/api/v1/assignments", b'{"user_id": "\xff\xfe"}', content_type="application/json")
    assert r.status_code == 400


@pytest.mark.parametrize("k", ["1000000", "-1", "0", "1e9", "abc", str(2**70)])
def test_out_of_range_k_is_a_400(key_client, k):
    r = key_client.get(f"/api/v1/closeup/1?user_id=u&k={k}")
    assert r.status_code == 400 and "k" in r.json()


@pytest.mark.parametrize("over, field", [
    ({"position": -1}, "position"), ({"type": "purchase"}, "type"), ({"pin_id": -5}, "pin_id"),
    ({"pin_id": 2**80}, "pin_id"), ({"user_id": "u" * 10_000}, "user_id"), ({"timestamp": "yesterday"}, "timestamp"),
])
def test_bad_event_fields_are_rejected_with_the_field_and_the_rest_kept(key_client, over, field):
    r = key_client.post("/api/v1/events", {"events": [_event(), _event(**over)]}, format="json")
    assert r.status_code == 202
    body = r.json()
    assert body["accepted"] == 1 and body["rejected"][0]["index"] == 1
    assert field in json.dumps(body["rejected"][0]["errors"])


def test_sql_and_html_in_every_string_field_are_stored_as_text_and_escaped_on_pages(key_client, experimenter):
    r = key_client.post("/api/v1/events", {"events": [_event(user_id=SQL), _event(user_id=HTML)]}, format="json")
    assert r.status_code == 202 and r.json()["accepted"] == 2
    r = key_client.post("/api/v1/assignments", {"user_id": SQL, "attributes": {"country": HTML}}, format="json")
    assert r.status_code == 200
    layer = services.create_layer(key="hostile", name=HTML)
    exp = services.create_experiment(actor=experimenter, layer=layer, key="hostile", name=HTML, hypothesis=SQL,
                                     variants=[
                                         {"key": "control", "weight": 50, "is_control": True,
                                          "recommender": {"name": "popularity"}},
                                         {"key": "t", "weight": 50, "recommender": {"name": "popularity"}}])
    for path in ("/", f"/experiments/{exp.key}/", f"/experiments/{exp.key}/results"):
        page = as_user(experimenter).get(path).content.decode()
        assert "<script>document.title" not in page and "&lt;script&gt;" in page, path
    assert as_user(experimenter).get("/api/v1/experiments/hostile").json()["name"] == HTML  # kept as text


def test_unauthenticated_garbage_never_reaches_a_500():
    client = APIClient()
    for path in ("/api/v1/assignments", "/api/v1/events", "/api/v1/experiments"):
        r = client.post(path, b"\x00\x01garbage", content_type="application/json")
        assert r.status_code in (400, 401, 403)


def test_non_string_values_where_strings_belong_are_400s_not_500s(key_client):
    # Found by Schemathesis: a dict as the surface, or as an event's type, raised TypeError.
    assert key_client.post("/api/v1/assignments", {"user_id": "u", "surface": {}}, format="json").status_code == 400
    assert key_client.post("/api/v1/assignments/batch", {"users": [], "surface": []}, format="json").status_code == 400
    r = key_client.post("/api/v1/events", {"events": [_event(type={})]}, format="json")
    # The batch's only event is rejected: a 400 that still says why, event by event.
    assert r.status_code == 400 and r.json()["rejected"][0]["errors"]["type"]
