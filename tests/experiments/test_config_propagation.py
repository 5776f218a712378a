"""A change made through one process reaches another serving process within 2 s."""

import json
import time
import urllib.request

import pytest

from accounts.services import create_api_key
from experiments import services
from tests import processes


def post_assignment(base, key, user_id):
    request = urllib.request.Request(
        f"{base}/api/v1/assignments", data=json.dumps({"user_id": user_id}).encode(),
        headers={"Authorization": f"Api-Key {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_pause_reaches_another_server_process_within_two_seconds(running_experiment, experimenter):
    key = create_api_key("propagation").key
    with processes.web_server(workers=2) as base:
        before = [post_assignment(base, key, f"u{i}")["assignments"] for i in range(10)]
        assert all(before), before
        services.transition(running_experiment, "pause", actor=experimenter)
        paused_at = time.monotonic()
        processes.wait_until(
            lambda: all(not post_assignment(base, key, f"u{i}")["assignments"] for i in range(10)),
            timeout=5, interval=0.05, what="the pause to reach the server",
        )
        elapsed = time.monotonic() - paused_at
        # Resuming travels the same way.
        services.transition(running_experiment, "start", actor=experimenter)
        processes.wait_until(lambda: post_assignment(base, key, "u1")["assignments"], timeout=5, interval=0.05,
                             what="the restart to reach the server")
    assert elapsed < 2.0
