"""/healthz and /readyz, in-process and against a real server whose dependencies die."""

import json
import signal
import time

import pytest

from tests import processes


def test_healthz_answers_without_credentials(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_ok_when_database_and_broker_reachable(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database": {"ok": True}, "broker": {"ok": True}}


def _readyz(base) -> tuple[int, dict, float]:
    started = time.monotonic()
    status, body = processes.http_get(f"{base}/readyz", timeout=10)
    return status, json.loads(body or b"{}"), time.monotonic() - started


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_readyz_503_fast_when_database_refuses():
    dead_db = f"postgres://nobody@127.0.0.1:{processes.free_port()}/pinpoint"
    with processes.web_server(DATABASE_URL=dead_db) as base:
        status, body, elapsed = _readyz(base)
    assert status == 503
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["reason"]
    assert elapsed < 2.0


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_readyz_503_within_2s_when_database_hangs():
    with processes.blackhole_server() as port:
        with processes.web_server(DATABASE_URL=f"postgres://nobody@127.0.0.1:{port}/pinpoint") as base:
            status, body, elapsed = _readyz(base)
    assert status == 503
    assert "no answer" in body["checks"]["database"]["reason"]
    assert elapsed < 2.0


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_readyz_follows_redis_going_down():
    with processes.redis_server() as (redis_proc, redis_url):
        with processes.web_server(CELERY_BROKER_URL=redis_url, CELERY_RESULT_BACKEND=redis_url) as base:
            status, body, _ = _readyz(base)
            assert status == 200, body
            redis_proc.send_signal(signal.SIGKILL)
            redis_proc.wait()
            status, body, elapsed = _readyz(base)
    assert status == 503
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert elapsed < 2.0
