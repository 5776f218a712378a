"""The page across experiments in a real browser: the chart draws one dot per treatment
from the local plotly file, and the summary a PM reads is the API's."""

import pytest

pytest.importorskip("playwright")

from tests.conftest import as_user  # noqa: E402
from tests.dashboard.test_browser import (  # noqa: E402, F401  (fixtures and helpers)
    PASSWORD,
    _sync_orm_beside_playwright,
    log_in,
    page,
    pytestmark,
    shot,
)
from tests.dashboard.test_offline_beside_online import finished  # noqa: E402
from tests.factories import UserFactory  # noqa: E402


def test_offline_against_online_draws_a_dot_per_treatment(page, live_server):  # noqa: F811
    pm = UserFactory(username="pm-offline-online", role="experimenter", password=PASSWORD)
    for i, (offline, ctr) in enumerate([((0.10, 0.12), 0.07), ((0.10, 0.09), 0.04), ((0.10, 0.11), 0.055)]):
        finished(pm, f"retrain-{i}", 2 * i + 1, offline, {"control": 0.05, "treatment": ctr}, users=300, seed=i)
    summary = as_user(pm).get("/api/v1/recommenders/offline-online").json()["summary"]
    log_in(page, live_server.url, "pm-offline-online")

    page.goto(f"{live_server.url}/recommenders/offline-online")

    page.wait_for_selector("#offline-online .main-svg")
    assert page.locator("#offline-online .scatterlayer .point").count() == summary["paired"] == 3
    assert "agree in direction" in page.locator("#offline-online-summary").inner_text()
    shot(page, "offline-online")
    page.goto(f"{live_server.url}/experiments/retrain-0/results")
    assert "Offline, treatment's NDCG@10 is 20.0% above control's" in page.locator("#offline-sentences").inner_text()
    shot(page, "results-offline-beside-online")
