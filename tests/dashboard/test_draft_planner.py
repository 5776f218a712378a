"""A draft's page shows the power planner before launch: the days needed at the planned
split and traffic, from the surface's last 14 days, in numbers a person reads."""

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from analysis.selectors import power_plan
from experiments import services
from tests.analysis.conftest import add_events, clear_events
from tests.conftest import as_user

pytestmark = pytest.mark.django_db


def test_a_draft_shows_the_days_needed_from_the_last_14_days(experimenter):
    layer = services.create_layer(key="layer-plan", name="Layer")
    e = services.create_experiment(actor=experimenter, layer=layer, key="plan-me", name="Plan me", variants=[
        {"key": "control", "weight": 90, "is_control": True, "recommender": {"name": "popularity", "params": {}}},
        {"key": "ranker", "weight": 10, "is_control": False, "recommender": {"name": "popularity", "params": {}}},
    ], primary_metric="closeup_ctr")
    page = as_user(experimenter).get(f"/experiments/{e.key}/").content.decode()
    assert "once the surface has events in the last 14 days" in page  # nothing to plan from yet
    rng = np.random.default_rng(5)
    now = datetime.now(UTC)
    events = []
    for i in range(400):
        t = now - timedelta(days=float(rng.uniform(0.1, 13)))
        events += [(f"p-{i}", "impression", t + timedelta(seconds=s)) for s in range(10)]
        events += [(f"p-{i}", "click", t + timedelta(seconds=20))] * int(rng.binomial(10, 0.1))
    add_events("default", events)
    try:
        page = as_user(experimenter).get(f"/experiments/{e.key}/").content.decode()
        plan = power_plan(e, {"alpha": 0.05, "power": 0.8}, datetime.now(UTC))
    finally:
        clear_events("default")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page))
    assert "Planned from the last 14 days on the closeup surface (400 users" in text
    assert "at a 90% / 10% split" in text
    assert f"needs {plan['users_needed']:,} users in all ({plan['users_needed_smallest_arm']:,} in its smallest arm)" \
        in text
    assert f"{plan['days_needed']:,.1f} days" in text
