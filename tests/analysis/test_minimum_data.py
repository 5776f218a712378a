"""The minimum-data rule: no verdict before every arm of a comparison has enough users
and events, and a number for how many more users the experiment needs."""

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from analysis import results as R
from analysis.report import AnalysisSettings
from analysis.stats.minimum_data import Arm, MinimumData, shortfall
from analysis.stats.moments import Moments

RULE = MinimumData(users_per_variant=100, events_per_variant=150)


def _grown(arm: Arm, more_total: int) -> Arm:
    """The arm after `more_total` new users enter the experiment, at its share and its own
    events per user."""
    new = round(more_total * arm.share)
    return Arm(arm.name, arm.users + new, arm.events + new * arm.events / arm.users, arm.share)


def test_the_users_asked_for_are_enough_and_not_many_more_at_a_90_10_split():
    arms = [Arm("control", 500, 400, 0.9), Arm("treatment", 50, 30, 0.1)]
    short = shortfall(RULE, arms, "clicks")
    assert not short.met and short.reason == "treatment has 50 of 100 users and 30 of 150 clicks"
    assert shortfall(RULE, [_grown(a, short.more_users) for a in arms]).met
    assert not shortfall(RULE, [_grown(a, short.more_users - 20) for a in arms]).met


@given(st.lists(st.tuples(st.integers(1, 5000), st.floats(0.0, 3.0), st.floats(0.01, 1.0)), min_size=2, max_size=2))
def test_growing_by_the_number_asked_for_meets_the_rule(raw):
    total = sum(s for _, _, s in raw)
    arms = [Arm(f"v{i}", n, n * rate, s / total) for i, (n, rate, s) in enumerate(raw)]
    short = shortfall(RULE, arms)
    if short.met:
        assert short.more_users == 0 and short.reason == ""
    elif short.more_users is None:
        # No event anywhere (no rate to extrapolate), or more users than there are people.
        assert all(a.events == 0 for a in arms) or any(a.events / a.users < 1e-9 for a in arms)
    else:
        assert short.more_users > 0
        grown = [Arm(a.name, a.users + math.ceil(short.more_users * a.share),
                     a.events + math.ceil(short.more_users * a.share) * (a.events / a.users if a.events
                                                                        else sum(b.events for b in arms)
                                                                        / sum(b.users for b in arms)),
                     a.share) for a in arms]
        assert all(g.users >= RULE.users_per_variant and g.events >= RULE.events_per_variant - 1e-6 for g in grown)


def _clicks(n: int, rate: float, rng) -> Moments:
    """A per-user click count's moments (one variable)."""
    x = rng.poisson(rate, n).astype(float)
    return Moments(n, (float(x.sum()),), ((float(x @ x),),))


def test_below_the_rule_a_comparison_has_no_verdict_and_leaves_the_correction_family():
    rng = np.random.default_rng(7)
    variants = [R.VariantInfo(1, "control", 45, True), R.VariantInfo(2, "big", 45, False),
                R.VariantInfo(3, "small", 10, False)]
    metric = R.MetricInfo("clicks", "Clicks per user", "mean", "higher", "primary", (0,), minimum=RULE,
                          events_word="clicks")
    moments = {1: _clicks(4000, 0.5, rng), 2: _clicks(4000, 0.6, rng), 3: _clicks(30, 8.0, rng)}
    report = R.build_report("e", variants, [metric], moments, AnalysisSettings(), days_running=3)
    big, small = report.primary.comparisons
    assert big.enough_data and big.significant and big.minimum_data.more_users == 0
    # Thirty users with a huge lift: the lift is there to see, nothing else is.
    assert not small.enough_data and not small.significant and small.relative_lift > 4
    assert (small.p_value, small.ci_low, small.ci_high, small.sequential.p_value, small.chance_to_beat_control) \
        == (None,) * 5
    assert small.minimum_data.reason == "small has 30 of 100 users"
    assert small.minimum_data.more_users == math.ceil(70 / 0.10)
    # The family under Holm is the one comparison that could be made.
    assert big.p_value_adjusted == big.p_value


def test_no_variance_is_no_verdict_with_the_reason():
    variants = [R.VariantInfo(1, "control", 50, True), R.VariantInfo(2, "treatment", 50, False)]
    metric = R.MetricInfo("imps", "Impressions per user", "mean", "higher", "primary", (0,), minimum=RULE)
    every_user_ten = Moments(500, (5000.0,), ((50000.0,),))
    report = R.build_report("e", variants, [metric], {1: every_user_ten, 2: every_user_ten}, AnalysisSettings(), 1)
    c = report.primary.comparisons[0]
    assert not c.enough_data and c.minimum_data.reason == R.NOTHING_TO_TEST and c.minimum_data.more_users is None
    assert c.ci_low is None and c.ci_high is None and not c.significant
