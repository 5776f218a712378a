"""Every statistic computed from sufficient statistics must equal what statsmodels or
scipy compute from the raw per-user data it was reduced from."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats import proportion as sm_proportion
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from analysis.metric_kinds.registry import metric_value
from analysis.stats.frequentist import compare
from analysis.stats.moments import Moments

TOL = 1e-6


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


def test_welch_t_test_matches_scipy_and_statsmodels_on_raw_data(rng):
    # Skewed counts with unequal variances and sizes, like saves per user.
    control = rng.negative_binomial(2, 0.6, size=3_001).astype(float)
    treatment = rng.negative_binomial(2, 0.55, size=2_500).astype(float) * 1.1
    c = metric_value("mean", Moments.from_data(control))
    t = metric_value("mean", Moments.from_data(treatment))
    result = compare(t, c, alpha=0.05)

    ref = stats.ttest_ind(treatment, control, equal_var=False)
    assert result.p_value == pytest.approx(ref.pvalue, abs=TOL)
    assert result.statistic == pytest.approx(ref.statistic, rel=TOL)
    low, high = CompareMeans(DescrStatsW(treatment), DescrStatsW(control)).tconfint_diff(alpha=0.05, usevar="unequal")
    assert result.absolute_ci_low == pytest.approx(low, abs=TOL)
    assert result.absolute_ci_high == pytest.approx(high, abs=TOL)
    assert result.absolute_lift == pytest.approx(treatment.mean() - control.mean(), abs=1e-12)


def test_proportion_z_test_matches_statsmodels_wald(rng):
    control = (rng.random(20_000) < 0.10).astype(float)
    treatment = (rng.random(19_000) < 0.106).astype(float)
    result = compare(metric_value("proportion", Moments.from_data(treatment)),
                     metric_value("proportion", Moments.from_data(control)))
    ref = sm_proportion.test_proportions_2indep(treatment.sum(), treatment.size, control.sum(), control.size,
                                  method="wald", compare="diff", correction=False)
    assert result.p_value == pytest.approx(ref.pvalue, abs=TOL)
    low, high = sm_proportion.confint_proportions_2indep(treatment.sum(), treatment.size, control.sum(), control.size,
                                           method="wald", compare="diff", alpha=0.05, correction=False)
    assert result.absolute_ci_low == pytest.approx(low, abs=TOL)
    assert result.absolute_ci_high == pytest.approx(high, abs=TOL)


def _linearised_ratio_variance(x, y):
    """The delta method written out on raw data: the variance of the per-user
    influence (x − R·y)/ȳ, divided by n."""
    r = x.sum() / y.sum()
    return np.var((x - r * y) / y.mean(), ddof=1) / x.size


def test_ratio_delta_method_matches_linearisation_on_raw_data(rng):
    impressions = rng.poisson(12, size=5_000).astype(float)
    clicks = rng.binomial(impressions.astype(int), 0.08).astype(float)
    value = metric_value("ratio", Moments.from_data([clicks, impressions]))
    assert value.value == pytest.approx(clicks.sum() / impressions.sum(), rel=1e-12)
    assert value.variance == pytest.approx(_linearised_ratio_variance(clicks, impressions), rel=TOL)


def test_ratio_delta_method_agrees_with_a_bootstrap(rng):
    # Heterogeneous users: clicks and impressions correlated through activity.
    activity = rng.gamma(1.5, 6, size=20_000)
    impressions = rng.poisson(activity).astype(float)
    clicks = rng.binomial(impressions.astype(int), rng.beta(2, 20, size=activity.size)).astype(float)
    se = np.sqrt(metric_value("ratio", Moments.from_data([clicks, impressions])).variance)
    idx = rng.integers(0, clicks.size, size=(1_000, clicks.size))
    boot = clicks[idx].sum(axis=1) / impressions[idx].sum(axis=1)
    # The bootstrap's own error in estimating a standard deviation from 1,000 draws is ~2.2%.
    assert se == pytest.approx(boot.std(ddof=1), rel=0.08)


def test_relative_lift_ci_from_the_delta_method_covers_the_truth_by_simulation(rng):
    # 2,000 experiments with a true +5% lift on a mean metric; the 95% CI of the
    # relative lift must cover 0.05 about 95% of the time.
    true_lift, covered, runs = 0.05, 0, 2_000
    for _ in range(runs):
        c = rng.exponential(2.0, size=2_000)
        t = rng.exponential(2.0 * (1 + true_lift), size=2_000)
        r = compare(metric_value("mean", Moments.from_data(t)), metric_value("mean", Moments.from_data(c)))
        covered += r.ci_low <= true_lift <= r.ci_high
    assert 0.935 <= covered / runs <= 0.965


def test_relative_lift_matches_the_ratio_of_means_and_its_delta_method_variance(rng):
    c = rng.normal(10, 3, size=4_000)
    t = rng.normal(10.4, 3.5, size=4_000)
    r = compare(metric_value("mean", Moments.from_data(t)), metric_value("mean", Moments.from_data(c)))
    assert r.relative_lift == pytest.approx(t.mean() / c.mean() - 1, rel=1e-12)
    var_t, var_c = t.var(ddof=1) / t.size, c.var(ddof=1) / c.size
    expected = np.sqrt(var_t / c.mean() ** 2 + t.mean() ** 2 * var_c / c.mean() ** 4)
    assert r.relative_se == pytest.approx(expected, rel=TOL)


def test_no_users_or_a_zero_control_gives_no_numbers_rather_than_an_error():
    empty = metric_value("mean", Moments(0, (0.0,), ((0.0,),)))
    one = metric_value("mean", Moments.from_data(np.array([1.0, 2.0, 3.0])))
    assert compare(one, empty).p_value != compare(one, empty).p_value  # nan
    zero = metric_value("mean", Moments.from_data(np.zeros(10)))
    r = compare(one, zero)
    assert r.p_value < 1 and r.relative_lift != r.relative_lift
    assert r.as_dict()["relative_lift"] is None
