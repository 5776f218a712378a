"""The verdict box reads a simulated truth right: a real lift says ship it, a regressed
guardrail says don't, an A/A says keep running; numbers for people on the page."""

import math

import pytest

from tests.conftest import as_user
from tests.dashboard.conftest import simulated_experiment as _simulated

pytestmark = pytest.mark.django_db


def _verdict(owner, experiment) -> str:
    page = as_user(owner).get(f"/experiments/{experiment.key}/results").content.decode()
    return page.split('id="verdict"')[1].split("</div>")[0]


def test_a_real_lift_says_ship_with_the_interval_and_points(experimenter):
    e = _simulated(experimenter, "lift", ctr={"control": 0.05, "treatment": 0.08},
                   hide={"control": 0.01, "treatment": 0.01})
    box = _verdict(experimenter, e)
    assert "Ship treatment" in box and "95% CI" in box and "3,000 users" in box
    page = as_user(experimenter).get(f"/experiments/{e.key}/results").content.decode()
    assert " pp<" in page and "%</td>" in page  # CTR as a percentage, its difference in points
    # A healthy split still shows its counts against the split's, with separators.
    health = page.split('id="health"')[1].split("</p>")[0]
    assert "control 1,500 users" in health and "the split asks for control 1,500" in health


def test_a_regressed_guardrail_says_dont_ship(experimenter):
    # Hides common enough (about 225 and 600 per arm) to clear the minimum-data rule's 150.
    e = _simulated(experimenter, "hides", ctr={"control": 0.05, "treatment": 0.08},
                   hide={"control": 0.015, "treatment": 0.04})
    assert "Don&#x27;t ship treatment: Hide rate regressed" in _verdict(experimenter, e)


def test_no_difference_says_keep_running(experimenter):
    e = _simulated(experimenter, "same", ctr={"control": 0.05, "treatment": 0.05},
                   hide={"control": 0.01, "treatment": 0.01}, users=500)
    box = _verdict(experimenter, e)
    assert "Keep running" in box or "No difference found" in box


def test_too_few_users_says_not_enough_data_yet_and_how_many_more(experimenter):
    e = _simulated(experimenter, "early", ctr={"control": 0.05, "treatment": 0.30},
                   hide={"control": 0.01, "treatment": 0.01}, users=40)
    box = _verdict(experimenter, e)
    # The rule (100 users and 150 clicks per variant, the built-in CTR's defaults) worked
    # out from the raw counts: each arm's shortfall, at its own clicks per user, over its
    # half of the traffic.
    report = e.reports.latest("computed_at").results
    ctr = next(m for m in report["metrics"] if m["metric"] == "closeup_ctr")
    needs = []
    for v in ctr["variants"]:
        users, clicks = v["users"], v["numerator_sum"]
        short = max(100 - users, (150 - clicks) / (clicks / users) if clicks < 150 else 0)
        needs.append(math.ceil(short / 0.5) if short else 0)
    assert max(needs) > 0
    assert f"Not enough data yet: about {max(needs):,} more users" in box
    page = as_user(experimenter).get(f"/experiments/{e.key}/results").content.decode()
    # A +500% lift on 40 users a side gets no badge that calls it; the table says why.
    assert "significantly better" not in page and "not enough data yet: about" in page
    assert "treatment has 40 of 100 users" in page
