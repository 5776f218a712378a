"""Power for any split and any number of treatments, with the report's correction: what
the calculator promises is what the analysis delivers."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.power import NormalIndPower

from analysis.stats import multiple_testing
from analysis.stats.power import (
    MIN_USERS,
    allocation_mde,
    allocation_power,
    comparison_powers,
    plan,
    users_needed,
    users_per_variant,
)

MEAN, VARIANCE, MDE = 3.0, 9.0, 0.05  # d = 0.05
Z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)


def test_an_equal_split_needs_what_the_two_arm_calculator_says():
    assert users_needed(MDE, MEAN, VARIANCE, [50, 50]) in (2 * users_per_variant(MDE, MEAN, VARIANCE) - 1,
                                                          2 * users_per_variant(MDE, MEAN, VARIANCE))


def test_a_90_10_split_needs_the_closed_form_total():
    # Var of the difference σ²(1/(0.9N) + 1/(0.1N)) must reach σ²(δμ/σ)²/(z + z)².
    closed = (1 / 0.9 + 1 / 0.1) * (Z / 0.05) ** 2
    assert users_needed(MDE, MEAN, VARIANCE, [90, 10]) == pytest.approx(closed, rel=1e-3)


def test_the_90_10_plan_takes_five_times_the_days_the_equal_split_arithmetic_said():
    # The case: 900 control and 100 treatment users a day. The old plan divided the
    # equal-split users per variant by the control's rate; the truth is the total the
    # 10% arm needs over all users' rate: (1/0.9 + 1/0.1)/2 · 0.9 = 5 times longer.
    old = users_per_variant(MDE, MEAN, VARIANCE) / 900
    new = plan(MDE, MEAN, VARIANCE, 900, 1.0, weights=[90, 10], arms_now=[900, 100])
    assert new.days_needed / old == pytest.approx(5.0, rel=2e-3)
    assert new.users_needed_smallest_arm == math.ceil(0.1 * new.users_needed)
    # …and its power now is the 100-user arm's, not that of two 900-user arms.
    assert new.power_now == pytest.approx(NormalIndPower().power(0.05, nobs1=900, alpha=0.05, ratio=100 / 900))


@pytest.mark.parametrize("n_control, n_treatment", [(900, 100), (5000, 5000), (1000, 3000), (20, 7)])
def test_two_arms_match_statsmodels_with_a_ratio(n_control, n_treatment):
    [p] = comparison_powers(MDE, MEAN, VARIANCE, n_control, [n_treatment])
    assert p == pytest.approx(NormalIndPower().power(0.05, nobs1=n_control, alpha=0.05, ratio=n_treatment / n_control),
                              abs=1e-12)


def test_without_a_correction_each_comparison_is_the_two_arm_one():
    powers = comparison_powers(MDE, MEAN, VARIANCE, 4000, [2000, 3000], correction="none")
    for n, p in zip([2000, 3000], powers, strict=True):
        assert p == pytest.approx(NormalIndPower().power(0.05, nobs1=4000, alpha=0.05, ratio=n / 4000))


def simulated_rejections(n_per_arm: int, runs: int, method: str, seed: int = 7) -> np.ndarray:
    """Per treatment, the share of runs in which its comparison was significant after the
    correction: per-user normal values, Welch z-tests as the analysis makes them."""
    rng = np.random.default_rng(seed)
    sd = math.sqrt(VARIANCE)
    hits = np.zeros(2)
    for _ in range(runs):
        arms = [rng.normal(MEAN * lift, sd, n_per_arm) for lift in (1.0, 1 + MDE, 1 + MDE)]
        p = []
        for t in arms[1:]:
            z = (t.mean() - arms[0].mean()) / math.sqrt(t.var(ddof=1) / n_per_arm + arms[0].var(ddof=1) / n_per_arm)
            p.append(2 * stats.norm.sf(abs(z)))
        hits += np.array(multiple_testing.adjust(p, method)) < 0.05
    return hits / runs


@pytest.mark.parametrize("method", ["holm", "bh"])
def test_three_arms_under_the_correction_deliver_the_promised_power(method):
    total = users_needed(MDE, MEAN, VARIANCE, [1, 1, 1], correction=method)
    promised = allocation_power(MDE, MEAN, VARIANCE, total, [1, 1, 1], correction=method)
    assert promised == pytest.approx(0.8, abs=0.005)
    measured = simulated_rejections(total // 3, 1500, method)
    assert np.all(np.abs(measured - promised) <= 0.03), measured


def test_holm_needs_more_than_no_correction_and_less_than_bonferroni():
    none = users_needed(MDE, MEAN, VARIANCE, [1, 1, 1], correction="none")
    holm = users_needed(MDE, MEAN, VARIANCE, [1, 1, 1])
    bonferroni = 3 * 2 * (stats.norm.ppf(1 - 0.025 / 2) + stats.norm.ppf(0.8)) ** 2 / 0.05**2
    assert none < holm < bonferroni


def test_the_mde_now_is_the_effect_the_arms_detect_with_the_power():
    mde = allocation_mde(3000, [1000, 1000], MEAN, VARIANCE)
    assert min(comparison_powers(mde, MEAN, VARIANCE, 3000, [1000, 1000])) == pytest.approx(0.8, abs=0.002)


anything = st.floats(allow_nan=True, allow_infinity=True)
weights = st.lists(st.one_of(anything, st.integers(-5, 10**6)), min_size=0, max_size=5)


@settings(max_examples=200, deadline=None)
@given(w=weights, mde=anything, mean=anything, variance=anything, n=anything,
       method=st.sampled_from(multiple_testing.METHODS))
def test_any_weights_give_a_power_in_0_1_or_none_never_an_exception(w, mde, mean, variance, n, method):
    p = allocation_power(mde, mean, variance, n, w, correction=method)
    assert p is None or 0 <= p <= 1
    total = users_needed(mde, mean, variance, w, correction=method)
    assert total is None or (isinstance(total, int) and total >= MIN_USERS)
    result = plan(0.02, mean, variance, 100, 3.0, weights=w, correction=method)
    assert result.days_needed is None or result.days_needed >= 0
