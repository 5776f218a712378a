"""The results page in each state a PM meets, in a real browser, with a screenshot of
each under var/test-artifacts/dashboard/: too early for a verdict, a clear winner (the
verdict, the rows' interval bars, the exposure timeline drawn), and a contaminated,
stale run (the health panel says both in words)."""

from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("playwright")

from analysis.services import run_analysis  # noqa: E402
from events.models import EventBatch  # noqa: E402
from experiments import services  # noqa: E402
from tests.dashboard.conftest import simulated_experiment  # noqa: E402
from tests.dashboard.test_browser import (  # noqa: E402, F401  (fixtures and helpers)
    PASSWORD,
    _sync_orm_beside_playwright,
    log_in,
    page,
    pytestmark,
    shot,
)
from tests.factories import UserFactory  # noqa: E402


def test_each_results_state_reads_right_in_the_browser(page, live_server):  # noqa: F811
    base = live_server.url
    pm = UserFactory(username="pm-states", role="experimenter", password=PASSWORD)
    simulated_experiment(pm, "too-early", ctr={"control": 0.05, "treatment": 0.30},
                         hide={"control": 0.01, "treatment": 0.01}, users=40)
    simulated_experiment(pm, "clear-winner", ctr={"control": 0.05, "treatment": 0.08},
                         hide={"control": 0.02, "treatment": 0.02}, users=1500)
    mixed = simulated_experiment(pm, "mixed-up", ctr={"control": 0.05, "treatment": 0.05},
                                 hide={"control": 0.02, "treatment": 0.02}, users=600)
    control, treatment = mixed.variants.order_by("id")
    services.record_exposures([{"experiment_id": mixed.id, "variant_id": treatment.id,
                                "user_id": f"mixed-up-control-{i}", "at": datetime.now(UTC),
                                "attributes": {}, "forced": False} for i in range(30)])
    EventBatch.objects.create(n_accepted=1, status=EventBatch.Status.DONE,
                              processed_at=datetime.now(UTC) - timedelta(hours=3))
    run_analysis(mixed)
    log_in(page, base, "pm-states")

    page.goto(f"{base}/experiments/too-early/results")
    verdict = page.locator("#verdict").inner_text()
    assert verdict.startswith("Not enough data yet: about") and "more users" in verdict
    assert "significantly" not in page.locator("main").inner_text()
    shot(page, "states-1-not-enough-data")

    page.goto(f"{base}/experiments/clear-winner/results")
    assert page.locator("#verdict").inner_text().startswith("Ship treatment")
    assert page.locator(".ci-bar").count() >= 2  # the primary's and a guardrail's rows at least
    page.wait_for_selector("#exposures .main-svg")  # plotly drew the timeline
    assert "of the planned sample" in page.locator("#exposure-progress").inner_text()
    shot(page, "states-2-clear-winner")

    page.goto(f"{base}/experiments/mixed-up/results")
    panel = page.locator("#data-health").inner_text()
    assert "30 users (2.50% of 1,200) were also reported in another variant" in panel
    assert "3.0 h before this analysis ran" in panel
    assert page.locator("#data-health .badge.bad").count() == 2
    shot(page, "states-3-contaminated-and-stale")
