"""Rate limits: per API key on client endpoints (429 + Retry-After), failing open when
the cache is down; failed logins per name and address."""

import time

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from accounts.services import create_api_key
from accounts.throttling import forget_local_counts, hit
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_counters():
    cache.clear()
    forget_local_counts()
    yield
    cache.clear()
    forget_local_counts()


def _client(name):
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Api-Key {create_api_key(name).key}")
    return c


def _until_refused(client, limit):
    """Requests until a 429; repeated once if a window boundary fell in the middle."""
    for _ in range(2):
        window = int(time.time() // 60)
        codes = [client.post("/api/v1/assignments", {"user_id": f"u{i}"}, format="json")
                 for i in range(limit + 1)]
        if int(time.time() // 60) == window:
            return codes
    raise AssertionError("two window boundaries in a row")


def test_a_client_key_past_its_rate_gets_429_with_retry_after_and_other_keys_do_not(settings):
    settings.CLIENT_RATE_LIMIT = "5/minute"
    first, second = _client("a"), _client("b")
    responses = _until_refused(first, 5)
    assert [r.status_code for r in responses[:5]] == [200] * 5
    refused = responses[5]
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "throttled" in refused.json()["detail"].lower()
    assert second.post("/api/v1/assignments", {"user_id": "x"}, format="json").status_code == 200


def test_events_and_closeup_are_limited_too(settings):
    settings.CLIENT_RATE_LIMIT = "1/day"  # a window of a minute could roll over between the requests
    c = _client("c")
    c.post("/api/v1/events", {"events": []}, format="json")
    assert c.post("/api/v1/events", {"events": []}, format="json").status_code == 429
    assert c.get("/api/v1/closeup/1?user_id=u").status_code == 429


def test_a_dead_cache_lets_requests_through(settings):
    settings.CLIENT_RATE_LIMIT = "1/minute"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0",
                                   "OPTIONS": {"socket_connect_timeout": 0.1, "socket_timeout": 0.1}}}
    c = _client("d")
    for _ in range(3):
        assert c.post("/api/v1/assignments", {"user_id": "u"}, format="json").status_code == 200


def test_failed_logins_are_limited_per_name_and_address(settings):
    settings.LOGIN_MAX_FAILURES = 3
    settings.LOGIN_LOCKOUT_SECONDS = 86_400  # no window boundary between the attempts
    UserFactory(username="pm", password="right-password")
    UserFactory(username="other", password="right-password")
    browser = Client()
    for _ in range(3):
        assert browser.post("/login/", {"username": "pm", "password": "wrong"}).status_code == 200
    locked = browser.post("/login/", {"username": "pm", "password": "right-password"})
    assert locked.status_code == 429 and locked["Retry-After"]
    assert "Too many failed attempts" in locked.content.decode()
    # Another name from the same address still gets its own tries.
    assert browser.post("/login/", {"username": "other", "password": "right-password"}).status_code == 302


def test_high_limits_are_counted_in_batches_and_still_enforced(settings):
    # 5,000 a minute: this process sends its count every 5 requests; the 5,001st and
    # later are refused once the shared counter has them, within one batch.
    key, limit = "batch-test", 5_000
    window = int(time.time() // 60)
    results = [hit(key, limit, 60) for _ in range(limit + 10)]
    if int(time.time() // 60) != window:
        pytest.skip("a window boundary fell in the middle")
    assert all(r is None for r in results[:limit])
    assert all(r is not None for r in results[limit + 5:])
    assert cache.get(f"rl:{key}:{window}") >= limit
