import json
import time
import urllib.error
import urllib.request

import pytest

from tests import processes
from tests.events.events_helpers import make_batch


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_events_get_503_with_retry_after_when_the_database_is_down():
    dead_db = f"postgres://nobody@127.0.0.1:{processes.free_port()}/pinpoint"
    with processes.web_server(DATABASE_URL=dead_db) as base:
        request = urllib.request.Request(
            f"{base}/api/v1/events", data=json.dumps({"events": make_batch(10)}).encode(),
            headers={"Authorization": "Api-Key pp_00000000_whatever", "Content-Type": "application/json"},
        )
        started = time.monotonic()
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        elapsed = time.monotonic() - started
    assert caught.value.code == 503
    assert caught.value.headers["Retry-After"] == "5"
    assert "nothing was changed" in json.loads(caught.value.read())["detail"]
    assert elapsed < 5
