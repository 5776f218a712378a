"""Live history as a client sees it, through the real parts: clicks posted to gunicorn,
stored by a Celery worker that appends them to Redis, read by the next closeup."""

import json
import time
import urllib.request
import uuid
from datetime import UTC, datetime

import pytest

from accounts.services import create_api_key
from core.tasks import ping
from recommenders import services
from recommenders.synthetic import generate_world
from tests import processes
from tests.serving.live_history_helpers import a_user_and_a_topic_new_to_them, topic_count


def _post_events(base, key, events):
    request = urllib.request.Request(f"{base}/api/v1/events", data=json.dumps({"events": events}).encode(),
                                     headers={"Authorization": f"Api-Key {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 202


def _closeup_pins(base, key, pin, user):
    status, body = processes.http_get(f"{base}/api/v1/closeup/{pin}?user_id={user}&k=25",
                                      headers={"Authorization": f"Api-Key {key}"}, timeout=30)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["fallback_reason"] is None
    return [i["pin_id"] for i in answer["items"]]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_clicks_on_a_new_topic_reach_the_next_closeup_within_seconds(tmp_path, settings):
    settings.RECOMMENDER_MODELS_DIR = tmp_path / "models"
    world = generate_world(n_pins=600, n_users=150, n_topics=6, seed=5)
    services.import_world(world)
    services.build_all(["popularity", "pixie"])
    user, opened, clicked, new = a_user_and_a_topic_new_to_them(world)
    key = create_api_key("live-history").key
    shared = {"RECOMMENDER_MODELS_DIR": settings.RECOMMENDER_MODELS_DIR, "DEFAULT_RECOMMENDER": "pixie",
              "RECOMMENDER_TIMEOUT_MS": 30_000}
    with processes.redis_server() as (_, redis_url), \
            processes.celery_worker(concurrency=1, log_path=tmp_path / "worker.log",
                                    LIVE_HISTORY_REDIS_URL=redis_url, **shared), \
            processes.web_server(workers=1, log_path=tmp_path / "web.log", LIVE_HISTORY_REDIS_URL=redis_url,
                                 **shared) as base:
        processes.wait_until(_worker_answers, timeout=60, what="the Celery worker to answer")
        before = topic_count(world, _closeup_pins(base, key, opened, user), new)
        now = datetime.now(UTC).isoformat()
        _post_events(base, key, [{"event_id": str(uuid.uuid4()), "user_id": user, "type": "click", "pin_id": p,
                                  "timestamp": now} for p in clicked])
        sent = time.monotonic()
        # Stored and appended by the worker, then read by the closeup: well under a second
        # on an idle machine (0.4 s here); 5 s leaves room for a loaded one.
        processes.wait_until(lambda: topic_count(world, _closeup_pins(base, key, opened, user), new) > before,
                             timeout=5, interval=0.1, what=f"topic {new} in {user}'s closeup")
        print(f"clicks to closeup: {time.monotonic() - sent:.2f} s")


def _worker_answers() -> bool:
    try:
        return ping.apply_async(args=["ready"]).get(timeout=5) is not None
    except Exception:
        return False
