import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.metric_kinds import registry as metric_kinds
from analysis.metric_kinds.registry import metric_value
from analysis.stats.cuped import Covariate, cuped, cuped_multi
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


# --- CUPED++: several covariates ------------------------------------------------------

MEAN = metric_kinds.get("mean")


def _users(rng, n, effect=0.0, without_pre=0.3):
    """Per user: post correlates with its own pre-period value and with another metric's;
    a share of users has no pre-period data (both zero, indicator 0) and behaves apart."""
    activity = rng.gamma(2.0, 1.0, n)
    active = rng.random(n) >= without_pre
    own = np.where(active, rng.poisson(2.0 * activity), 0).astype(float)
    other = np.where(active, rng.poisson(3.0 * activity), 0).astype(float)
    post = 0.5 + 0.6 * own + 0.3 * other + 1.5 * (~active) + rng.normal(0, 1.0, n) + effect
    return post, own, other, active.astype(float)


def _covariates(*names):
    return [Covariate(name, MEAN, (i,)) for i, name in enumerate(names, start=1)]


def test_cuped_plus_plus_equals_the_ols_fit_on_several_covariates():
    rng = np.random.default_rng(17)
    arms = [_users(rng, 6_000), _users(rng, 5_000, 0.05), _users(rng, 5_500, 0.1)]
    result = cuped_multi(MEAN, [Moments.from_data(list(a)) for a in arms], [0],
                         _covariates("own", "other", "active"))
    post, own, other, active = (np.concatenate([a[j] for a in arms]) for j in range(4))
    group = np.concatenate([np.full(a[0].size, i) for i, a in enumerate(arms)])
    x = np.column_stack([np.ones_like(post), group == 1, group == 2,
                         own - own.mean(), other - other.mean(), active - active.mean()]).astype(float)
    fit = sm.OLS(post, x).fit(cov_type="HC1")
    assert result.covariates == ("own", "other", "active")
    assert np.allclose(result.theta, fit.params[3:], atol=1e-9)
    assert result.adjusted[0].value == pytest.approx(fit.params[0], abs=1e-9)
    for v in (1, 2):
        assert result.adjusted[v].value - result.adjusted[0].value == pytest.approx(fit.params[v], abs=1e-9)
        se = np.sqrt(result.adjusted[v].variance + result.adjusted[0].variance)
        assert se == pytest.approx(fit.bse[v], rel=0.01)
    # More covariates than one: more of the variance goes.
    single = cuped(MEAN, [Moments.from_data(list(a)) for a in arms], [0], [1])
    assert all(result.variance_reduction(i) > single.variance_reduction(i) + 0.05 for i in range(3))


def test_cuped_plus_plus_on_one_covariate_is_cuped():
    rng = np.random.default_rng(23)
    for kind, arms, post, pre in (
        ("mean", [Moments.from_data([a[0], a[1]]) for a in (_users(rng, 3_000), _users(rng, 3_000, 0.1))],
         [0], [1]),
        ("ratio", [Moments.from_data(_ratio_users(rng, 2_000)) for _ in range(3)], [0, 1], [2, 3]),
    ):
        k = metric_kinds.get(kind)
        one = cuped(k, arms, post, pre)
        many = cuped_multi(k, arms, post, [Covariate("pre", k, tuple(pre))])
        assert many.theta[0] == pytest.approx(one.theta, rel=1e-9)
        for a, b in zip(many.adjusted, one.adjusted, strict=True):
            assert a.value == pytest.approx(b.value, rel=1e-12)
            assert a.unit_variance == pytest.approx(b.unit_variance, rel=1e-9)


def _ratio_users(rng, n):
    activity = rng.gamma(2.0, 10.0, size=n)
    ctr = rng.beta(1.5, 12, size=n)
    cols = []
    for _ in range(2):
        imp = rng.poisson(activity).astype(float)
        cols += [rng.binomial(imp.astype(int), ctr).astype(float), imp]
    return cols


def test_users_without_pre_period_data_are_adjusted_through_the_indicator():
    # Half the users are new: no pre-period events. Without the indicator their zero
    # looks like a very low pre-period value; with it they get their own level.
    rng = np.random.default_rng(29)
    arms = [_users(rng, 8_000, without_pre=0.5), _users(rng, 8_000, without_pre=0.5)]
    moments = [Moments.from_data(list(a)) for a in arms]
    with_flag = cuped_multi(MEAN, moments, [0], _covariates("own", "other", "active"))
    without = cuped_multi(MEAN, moments, [0], _covariates("own", "other"))
    for i, (post, own, other, active) in enumerate(arms):
        resid = sm.OLS(post, np.column_stack([np.ones_like(post), own, other, active])).fit().resid
        assert with_flag.variance_reduction(i) == pytest.approx(1 - np.var(resid) / np.var(post), abs=0.01)
        assert with_flag.variance_reduction(i) > without.variance_reduction(i) + 0.02


def test_singular_covariates_fall_back_without_failing():
    rng = np.random.default_rng(31)
    arms = [_users(rng, 2_000), _users(rng, 2_000)]
    plain = cuped_multi(MEAN, [Moments.from_data([a[0]]) for a in arms], [0], [])
    own_only = cuped_multi(MEAN, [Moments.from_data([a[0], a[1]]) for a in arms], [0], _covariates("own"))
    zeros = np.zeros(2_000)
    # A covariate of zeros (nobody had pre-period data): θ = 0 for it, nothing adjusted by it.
    z = cuped_multi(MEAN, [Moments.from_data([a[0], zeros]) for a in arms], [0], _covariates("none"))
    assert z.theta == (0.0,)
    for a, b in zip(z.adjusted, plain.adjusted, strict=True):
        assert a.value == b.value and a.unit_variance == pytest.approx(b.unit_variance, rel=1e-12)
    # The same covariate twice, and beside zeros: the same adjustment as once.
    dup = cuped_multi(MEAN, [Moments.from_data([a[0], a[1], a[1], zeros]) for a in arms], [0],
                      _covariates("own", "own again", "none"))
    assert dup.theta[0] == pytest.approx(dup.theta[1], rel=1e-6)
    for a, b in zip(dup.adjusted, own_only.adjusted, strict=True):
        assert a.value == pytest.approx(b.value, rel=1e-9)
        assert a.unit_variance == pytest.approx(b.unit_variance, rel=1e-6)
    # A ratio covariate with no pre-period denominator anywhere is dropped.
    ratio = metric_kinds.get("ratio")
    new = cuped_multi(MEAN, [Moments.from_data([a[0], a[1], zeros, zeros]) for a in arms], [0],
                      [Covariate("own", MEAN, (1,)), Covariate("ctr", ratio, (2, 3))])
    assert new.covariates == ("own",)
    assert new.adjusted[0].value == pytest.approx(own_only.adjusted[0].value, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 40), st.integers(0, 10_000), st.integers(0, 4), st.booleans())
def test_cuped_plus_plus_never_fails_and_gives_a_finite_non_negative_variance(n, seed, columns, integers):
    rng = np.random.default_rng(seed)
    arms = []
    for _ in range(2):
        data = [rng.poisson(2.0, n).astype(float)]
        for j in range(columns):
            col = rng.poisson(1.0, n) if integers else rng.normal(0, 1e3, n)
            data.append(col.astype(float) * (j % 3 != 2))  # every third column all zeros
        if columns >= 2:
            data[-1] = data[1] * 2.0  # collinear
        arms.append(Moments.from_data(data))
    result = cuped_multi(MEAN, arms, [0], _covariates(*(f"x{j}" for j in range(columns))))
    for v in result.adjusted:
        assert np.isfinite(v.value) and np.isfinite(v.unit_variance) and v.unit_variance >= 0
    assert all(np.isfinite(result.theta))
