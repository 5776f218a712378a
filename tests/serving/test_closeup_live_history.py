"""The closeup reads the live history (in process memory here; Redis in
tests/serving/test_closeup_live_history_server.py): recent engagements shape the grid,
unknown pins are dropped, and a Redis outage costs one short timeout, not the closeup."""

import time

import pytest

from events import live_history
from serving import closeup
from serving.closeup import serve_closeup
from tests import processes
from tests.serving.live_history_helpers import a_user_and_a_topic_new_to_them, topic_count

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _pixie(settings):
    # Pixie walks from every history pin and leans to the user's topics: the recommender
    # whose grid a new interest changes most visibly. A generous deadline: no fallback.
    settings.DEFAULT_RECOMMENDER = "pixie"
    settings.RECOMMENDER_TIMEOUT_MS = 30_000


def test_pins_clicked_a_moment_ago_bring_their_topic_into_the_next_closeup(built, world):
    user, opened, clicked, new = a_user_and_a_topic_new_to_them(world)
    before = [i.pin_id for i in serve_closeup(opened, user, 25, {}).items]
    live_history.store().append({user: [(p, 1.0) for p in clicked]})
    after = [i.pin_id for i in serve_closeup(opened, user, 25, {}).items]
    assert topic_count(world, after, new) > topic_count(world, before, new)


def test_pins_the_held_catalog_does_not_know_are_dropped(built, world):
    user, opened, _, _ = a_user_and_a_topic_new_to_them(world)
    before = serve_closeup(opened, user, 25, {})
    live_history.store().append({user: [(10_000_000, 1.0), (10_000_001, 2.0)]})
    after = serve_closeup(opened, user, 25, {})
    assert [i.pin_id for i in after.items] == [i.pin_id for i in before.items]


@pytest.mark.parametrize("down", ["refused", "hung"])
def test_a_redis_outage_serves_the_built_history_after_one_short_timeout(built, world, settings, monkeypatch, down):
    user, opened, _, _ = a_user_and_a_topic_new_to_them(world)
    expected = [i.pin_id for i in serve_closeup(opened, user, 25, {}).items]
    settings.LIVE_HISTORY_TIMEOUT_MS = 50
    with processes.blackhole_server() as port:
        # A port nobody listens on refuses at once; the blackhole accepts and never answers.
        settings.LIVE_HISTORY_REDIS_URL = f"redis://127.0.0.1:{port if down == 'hung' else processes.free_port()}/0"
        started = time.monotonic()
        first = serve_closeup(opened, user, 25, {})
        took = time.monotonic() - started
        assert [i.pin_id for i in first.items] == expected
        assert first.fallback_reason is None
        assert took < 5  # 50 ms and the grid, not redis-py's 5 s default nor its retries
        # Then it is not asked again for a while: no request pays the timeout meanwhile.
        asked = []
        real = live_history.recent
        monkeypatch.setattr(live_history, "recent", lambda user_id: asked.append(user_id) or real(user_id))
        assert [i.pin_id for i in serve_closeup(opened, user, 25, {}).items] == expected
        assert asked == []
    closeup._live_history.reset()
