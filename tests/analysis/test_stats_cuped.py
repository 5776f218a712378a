import numpy as np
import pytest
import statsmodels.api as sm

from analysis.metric_kinds import registry as metric_kinds
from analysis.metric_kinds.registry import metric_value
from analysis.stats.cuped import cuped
from analysis.stats.frequentist import compare
from analysis.stats.moments import Moments


def _arm(rng, n, effect, rho=0.7):
    pre = rng.gamma(2.0, 1.5, size=n)
    noise = rng.normal(0, 1.0, size=n)
    post = 1.0 + rho * pre + noise + effect
    return post, pre


def test_cuped_estimate_equals_the_ols_treatment_coefficient():
    rng = np.random.default_rng(7)
    arms = [_arm(rng, 6_000, 0.0), _arm(rng, 5_000, 0.05), _arm(rng, 5_500, 0.1)]
    result = cuped(metric_kinds.get("mean"), [Moments.from_data([post, pre]) for post, pre in arms], [0], [1])

    post = np.concatenate([a[0] for a in arms])
    pre = np.concatenate([a[1] for a in arms])
    group = np.concatenate([np.full(a[0].size, i) for i, a in enumerate(arms)])
    x = np.column_stack([np.ones_like(post), group == 1, group == 2, pre - pre.mean()]).astype(float)
    fit = sm.OLS(post, x).fit(cov_type="HC1")
    for v in (1, 2):
        diff = result.adjusted[v].value - result.adjusted[0].value
        assert diff == pytest.approx(fit.params[v], abs=1e-6)
        se = np.sqrt(result.adjusted[v].variance + result.adjusted[0].variance)
        # The robust OLS standard error; ours treats θ as known, a difference of O(1/n).
        assert se == pytest.approx(fit.bse[v], rel=0.01)
    assert result.theta == pytest.approx(fit.params[3], abs=1e-9)
    # The intercept is the control's adjusted mean.
    assert result.adjusted[0].value == pytest.approx(fit.params[0], abs=1e-6)


def test_cuped_variance_reduction_is_the_squared_correlation():
    rng = np.random.default_rng(11)
    post, pre = _arm(rng, 50_000, 0.0, rho=0.9)
    result = cuped(metric_kinds.get("mean"), [Moments.from_data([post, pre])], [0], [1])
    rho = np.corrcoef(post, pre)[0, 1]
    assert result.variance_reduction(0) == pytest.approx(rho**2, abs=1e-6)


def test_cuped_on_a_ratio_metric_keeps_the_estimate_unbiased_and_narrows_it():
    # A/A by simulation: the adjusted lift stays centred on 0 and has a smaller
    # spread than the unadjusted one, with a covariate that correlates per user.
    rng = np.random.default_rng(5)
    raw, adj, reported_se = [], [], []
    for _ in range(300):
        arms = []
        for _ in range(2):
            activity = rng.gamma(2.0, 20.0, size=3_000)
            ctr = rng.beta(1.5, 12, size=activity.size)
            pre_imp = rng.poisson(activity).astype(float)
            pre_clk = rng.binomial(pre_imp.astype(int), ctr).astype(float)
            imp = rng.poisson(activity).astype(float)
            clk = rng.binomial(imp.astype(int), ctr).astype(float)
            arms.append(Moments.from_data([clk, imp, pre_clk, pre_imp]))
        result = cuped(metric_kinds.get("ratio"), arms, [0, 1], [2, 3])
        adjusted = compare(result.adjusted[1], result.adjusted[0])
        adj.append(adjusted.absolute_lift)
        reported_se.append(adjusted.absolute_se)
        raw.append(compare(metric_value("ratio", arms[1].select([0, 1])),
                           metric_value("ratio", arms[0].select([0, 1]))).absolute_lift)
    assert abs(np.mean(adj)) < 3 * np.std(adj) / np.sqrt(len(adj))
    assert np.std(adj) < 0.8 * np.std(raw)
    # The standard error it reports is the spread it really has.
    assert np.mean(reported_se) == pytest.approx(np.std(adj), rel=0.15)


def test_without_pre_period_data_cuped_leaves_a_ratio_metric_as_it_was():
    # New users: nothing before their exposure, so the pre-period impressions are all 0.
    rng = np.random.default_rng(3)
    arms = []
    for _ in range(2):
        imp = rng.poisson(10, size=500).astype(float)
        clk = rng.binomial(imp.astype(int), 0.1).astype(float)
        arms.append(Moments.from_data([clk, imp, np.zeros(500), np.zeros(500)]))
    result = cuped(metric_kinds.get("ratio"), arms, [0, 1], [2, 3])
    plain = [metric_value("ratio", a.select([0, 1])) for a in arms]
    for adjusted, raw in zip(result.adjusted, plain, strict=True):
        assert adjusted.value == pytest.approx(raw.value, rel=1e-12)
        assert adjusted.variance == pytest.approx(raw.variance, rel=1e-9)
    assert np.isfinite(compare(result.adjusted[1], result.adjusted[0]).ci_low)
