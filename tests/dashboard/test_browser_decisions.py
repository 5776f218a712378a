"""Decisions in a real browser: a second experiment created in a partly taken layer
without bucket arithmetic, a ramp that asks first, the ship dialog that recommends the
winner, a ship rolled out in steps and stopped, and the closeup defaults page with a
holdout. A screenshot of each state goes to var/test-artifacts/dashboard/."""

from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("playwright")

from analysis.services import run_analysis  # noqa: E402
from experiments import services  # noqa: E402
from experiments.models import Experiment, Holdout, Rollout  # noqa: E402
from tests.analysis.conftest import add_events, add_exposures  # noqa: E402
from tests.dashboard.test_browser import (  # noqa: E402, F401  (fixtures and helpers)
    PASSWORD,
    _sync_orm_beside_playwright,
    log_in,
    page,
    pytestmark,
    shot,
)
from tests.factories import UserFactory  # noqa: E402


def _with_a_winner(owner):
    layer = services.create_layer(key="closeup-main", name="Closeup main")
    experiment = services.create_experiment(
        actor=owner, layer=layer, key="boards-vs-popular", name="Boards vs popular", layer_buckets=(0, 5000),
        variants=[{"key": "control", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}},
                  {"key": "boards", "weight": 50, "recommender": {"name": "board_cooccurrence"}}])
    services.transition(experiment, "start", actor=owner)
    variants = {v.key: v for v in experiment.variants.all()}
    exposed, seen = datetime.now(UTC) - timedelta(hours=2), datetime.now(UTC) - timedelta(hours=1)
    rows, events = [], []
    for key, every in (("control", 10), ("boards", 4)):
        for i in range(800):  # 160 clicks in control: past the minimum data (150) before a verdict
            user = f"{key}-{i}"
            rows.append((variants[key], user, exposed, {}, False))
            events += [(user, "impression", seen)] * 10 + ([(user, "click", seen)] * 2 if i % every == 0 else [])
    add_exposures("default", experiment, rows)
    add_events("default", events)
    run_analysis(experiment)
    return experiment


def test_create_ramp_ship_in_steps_and_hold_out(page, live_server):  # noqa: F811
    base = live_server.url
    admin = UserFactory(username="boss", role="admin", password=PASSWORD)
    _with_a_winner(admin)
    log_in(page, base, "boss")

    # A second experiment in the same, half-taken layer: the picker says what is free.
    page.goto(f"{base}/experiments/new")
    assert "50% free: 50–100% of the layer" in page.content()
    page.locator("#id_key").fill("second-try")
    page.locator("#id_name").fill("Second try")
    shot(page, "decisions-1-create-in-a-half-taken-layer")
    page.get_by_role("button", name="Create experiment").click()
    page.wait_for_url(f"{base}/experiments/second-try/")
    assert (Experiment.objects.get(key="second-try").bucket_start, Experiment.objects.get(key="second-try")
            .bucket_end) == (5000, 10_000)
    assert "Closeup CTR (closeup_ctr)" in page.content()

    # A ramp asks first.
    page.goto(f"{base}/experiments/boards-vs-popular/")
    page.locator("#id_traffic").fill("40")
    page.get_by_role("button", name="Ramp").click()
    assert "from 100% to 40%?" in page.content()
    shot(page, "decisions-2-ramp-confirmation")
    page.get_by_role("button", name="Yes, ramp to 40%").click()
    page.wait_for_url(f"{base}/experiments/boards-vs-popular/")
    assert "traffic_percent: 100 → 40" in page.locator("#audit").inner_text()

    # The ship dialog recommends the winner; ship it in steps.
    page.get_by_role("link", name="Ship…").click()
    assert "Recommended: boards." in page.content()
    assert page.locator("#id_variant").input_value() == "boards"
    page.locator("#id_rollout").fill("10, 50, 100")
    page.locator("#id_hold_hours").fill("12")
    shot(page, "decisions-3-ship-dialog")
    page.get_by_role("button", name="Yes, ship it").click()
    page.wait_for_url(f"{base}/experiments/boards-vs-popular/")
    shipped = page.locator("#shipped").inner_text()
    assert "Shipped boards" in shipped and "10%" in shipped and "by boss" in shipped
    shot(page, "decisions-4-rolling-out")
    page.get_by_role("button", name="Stop the rollout").click()
    page.wait_for_url(f"{base}/experiments/boards-vs-popular/")
    assert "rollout stopped at 10%" in page.content()
    assert Rollout.objects.get().status == "stopped"

    # The closeup defaults page, and a holdout started there.
    page.get_by_role("link", name="Closeup defaults").click()
    page.locator("#id_percent").fill("5")
    page.get_by_role("button", name="Start a holdout").click()
    page.wait_for_selector("#holdout")
    assert "of users are held back" in page.locator("#holdout").inner_text()
    assert Holdout.objects.get(is_active=True).percent == 5
    shot(page, "decisions-5-closeup-defaults-with-holdout")
