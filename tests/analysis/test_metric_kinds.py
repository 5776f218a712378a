"""The metric-kind registry: the three kinds give the numbers the analysis gave before
it had kinds (the formulas below are the ones it had), each chooses its test, counts
its per-user variables as before and rejects what it cannot compute; and a new kind
is one class and one registration."""

import math

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from scipy import stats

from analysis import results as R
from analysis.metric_kinds import registry as metric_kinds
from analysis.metric_kinds.base import ANY, MetricKind, PerUserCount, sorted_types
from analysis.models import Metric
from analysis.report import AnalysisSettings
from analysis.stats.frequentist import compare
from analysis.stats.moments import MetricValue, Moments
from analysis.sufficient_statistics import MetricSpec, Variable, plan


def old_value(kind: str, m: Moments) -> tuple[float, float, tuple]:
    """(value, unit variance, gradient) as analysis/stats/moments.metric_value computed them."""
    nan = float("nan")
    if m.n == 0:
        return nan, nan, (nan,) * len(m.sums)
    mu, cov = m.mean, m.covariance
    if kind == "mean":
        return float(mu[0]), float(cov[0, 0]), (1.0,)
    if kind == "proportion":
        p = float(mu[0])
        return p, p * (1.0 - p), (1.0,)
    mx, my = float(mu[0]), float(mu[1])
    if my == 0:
        return nan, nan, (nan, nan)
    g = np.array([1.0 / my, -mx / my**2])
    return mx / my, float(g @ cov[:2, :2] @ g), tuple(g)


def _same(a, b) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def test_the_registry_holds_exactly_the_three_kinds_in_the_order_the_schema_records():
    assert metric_kinds.names() == ["mean", "proportion", "ratio"]
    expected = [("proportion", "proportion of users"), ("mean", "mean per user"), ("ratio", "ratio of totals")]
    assert metric_kinds.choices() == expected
    assert Metric._meta.get_field("kind").choices == expected  # as migration 0001 has them
    assert all(metric_kinds.get(key).key == key for key in metric_kinds.names())
    with pytest.raises(ValueError, match="unknown metric kind 'median'"):
        metric_kinds.get("median")


@pytest.mark.parametrize("seed", range(5))
def test_each_kind_gives_the_value_and_variance_of_the_formulas_it_replaced(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    impressions = rng.poisson(8, n).astype(float)
    clicks = rng.binomial(impressions.astype(int), 0.1).astype(float)
    engaged = (clicks > 0).astype(float)
    data = {"mean": [clicks], "proportion": [engaged], "ratio": [clicks, impressions]}
    for key, columns in data.items():
        m = Moments.from_data(columns)
        got = metric_kinds.get(key).value(m)
        value, unit_variance, gradient = old_value(key, m)
        assert (got.value, got.unit_variance, got.gradient, got.n) == (value, unit_variance, gradient, n)
        assert got.kind is metric_kinds.get(key)
    # And against the raw per-user data.
    ratio = metric_kinds.metric_value("ratio", Moments.from_data([clicks, impressions]))
    mx, my = clicks.mean(), impressions.mean()
    c = np.cov(clicks, impressions, ddof=1)
    delta = c[0, 0] / my**2 - 2 * mx * c[0, 1] / my**3 + mx**2 * c[1, 1] / my**4
    assert ratio.value == pytest.approx(clicks.sum() / impressions.sum(), rel=1e-12)
    assert ratio.variance == pytest.approx(delta / n, rel=1e-9)
    mean = metric_kinds.metric_value("mean", Moments.from_data(clicks))
    assert mean.variance == pytest.approx(clicks.var(ddof=1) / n, rel=1e-9)
    p = engaged.mean()
    assert metric_kinds.metric_value("proportion", Moments.from_data(engaged)).variance == pytest.approx(
        p * (1 - p) / n, rel=1e-9)


def test_without_users_or_without_a_denominator_the_value_is_undefined_as_before():
    for key, k in (("mean", 1), ("proportion", 1), ("ratio", 2)):
        empty = Moments(0, (0.0,) * k, tuple((0.0,) * k for _ in range(k)))
        got = metric_kinds.metric_value(key, empty)
        assert got.n == 0 and all(_same(a, b) for a, b in zip(
            (got.value, got.unit_variance, *got.gradient), (math.nan, math.nan, *(math.nan,) * k), strict=True))
    no_impressions = Moments.from_data([np.ones(5), np.zeros(5)])
    got = metric_kinds.metric_value("ratio", no_impressions)
    assert math.isnan(got.value) and math.isnan(got.unit_variance) and got.n == 5


def test_a_mean_is_tested_by_welch_and_a_proportion_or_ratio_by_z():
    rng = np.random.default_rng(3)
    t, c = rng.poisson(2.2, 300).astype(float), rng.poisson(2.0, 500).astype(float)
    welch = compare(metric_kinds.metric_value("mean", Moments.from_data(t)),
                    metric_kinds.metric_value("mean", Moments.from_data(c)))
    ref = stats.ttest_ind(t, c, equal_var=False)
    assert welch.df == pytest.approx(ref.df, rel=1e-9) and welch.p_value == pytest.approx(ref.pvalue, abs=1e-9)
    for key, columns in (("proportion", lambda x: [x > 2]), ("ratio", lambda x: [x, x + 1])):
        z = compare(metric_kinds.metric_value(key, Moments.from_data(np.asarray(columns(t), dtype=float))),
                    metric_kinds.metric_value(key, Moments.from_data(np.asarray(columns(c), dtype=float))))
        assert z.df == math.inf
        assert z.p_value == pytest.approx(2 * stats.norm.sf(abs(z.statistic)), rel=1e-9)


def test_the_per_user_variables_are_planned_as_before():
    """The variables and layouts below are what `plan` gave before the kinds existed."""
    specs = [MetricSpec("ctr", "ratio", ("click",), ("impression",), "count", None, 7),
             MetricSpec("ctr_any", "ratio", ("save", "click"), ("click", "save"), "any", 24, 3),
             MetricSpec("ratio_any", "ratio", ("click",), ("impression",), "any", None, 0),
             MetricSpec("eng", "proportion", ("save", "click"), (), "any", 6, 7),
             MetricSpec("spu", "mean", ("save",), (), "count", None, 7),
             MetricSpec("spu_any", "mean", ("save",), (), "any", None, 7),
             MetricSpec("spu_sum", "mean", ("save",), (), "sum", 12, 0)]
    variables, layouts = plan(specs)
    assert variables[:14] == [
        Variable(("click",), False), Variable(("impression",), False), Variable(("click",), False, None, 7),
        Variable(("impression",), False, None, 7), Variable(("click", "save"), True, 24),
        Variable(("click", "save"), True, None, 3), Variable(("click",), True),
        Variable(("click", "save"), True, 6), Variable(("click", "save"), True, None, 7),
        Variable(("save",), False), Variable(("save",), False, None, 7), Variable(("save",), True),
        # "sum" sums the events' values since events carry one (it counted them before).
        Variable(("save",), True, None, 7), Variable(("save",), False, 12, measure="value"),
    ]
    # CUPED++'s "any pre-period event" indicators come after, one per pre-period length.
    assert variables[14:] == [Variable(("click", "impression", "save"), True, None, 7),
                              Variable(("click", "impression", "save"), True, None, 3)]
    assert {k: (v.post, v.pre) for k, v in layouts.items()} == {
        "ctr": ([0, 1], [2, 3]), "ctr_any": ([4, 4], [5, 5]), "ratio_any": ([6, 1], []), "eng": ([7], [8]),
        "spu": ([9], [10]), "spu_any": ([11], [12]), "spu_sum": ([13], [])}
    _, layouts = plan(specs, cuped=False)
    assert {k: v.post for k, v in layouts.items()} == {
        "ctr": [0, 1], "ctr_any": [2, 2], "ratio_any": [3, 1], "eng": [4], "spu": [5], "spu_any": [6],
        "spu_sum": [7]}


@pytest.mark.parametrize(("fields", "problems"), [
    (dict(kind="ratio", denominator_types=[]), {"denominator_types": "A ratio metric needs denominator event types."}),
    (dict(kind="ratio", denominator_types=["impression"]), {}),
    (dict(kind="mean", denominator_types=["impression"]),
     {"denominator_types": "Only ratio metrics have a denominator."}),
    (dict(kind="mean", aggregation="any"), {}),
    (dict(kind="proportion", aggregation="any"), {}),
    (dict(kind="proportion", aggregation="count"),
     {"aggregation": "A proportion counts users with any such event: use 'any'."}),
    (dict(kind="proportion", denominator_types=["impression"]),
     {"denominator_types": "Only ratio metrics have a denominator.",
      "aggregation": "A proportion counts users with any such event: use 'any'."}),
    (dict(kind="median", denominator_types=["impression"]), {}),  # the kind field's choices say it
])
def test_each_kind_rejects_what_it_cannot_compute(fields, problems):
    metric = Metric(key="m", name="M", numerator_types=["click"], **fields)
    assert metric_kinds.validate(metric) == problems
    if problems:
        # The model raises the first (as it always has); the API reports them all.
        first = next(iter(problems))
        with pytest.raises(ValidationError) as err:
            metric.clean()
        assert err.value.message_dict == {first: [problems[first]]}
    else:
        metric.clean()


class PerMille(MetricKind):
    """A throwaway kind: events per thousand users, tested by z."""

    key = "per_mille"
    label = "per thousand users"

    def per_user_counts(self, metric):
        return (PerUserCount(sorted_types(metric.numerator_types), metric.aggregation == ANY),)

    def estimate(self, moments):
        return MetricValue(self, moments.n, 1000 * float(moments.mean[0]), 1e6 * float(moments.covariance[0, 0]),
                           (1000.0,))


@pytest.fixture
def per_mille():
    kind = metric_kinds.register(PerMille())
    yield kind
    del metric_kinds.REGISTRY[kind.key]


def test_a_new_kind_is_one_class_and_one_registration(per_mille):
    assert "per_mille" in metric_kinds.names()
    with pytest.raises(ValueError, match="registered already"):
        metric_kinds.register(PerMille())
    variables, layouts = plan([MetricSpec("saves_pm", "per_mille", ("save",), (), "count", None, 7),
                               MetricSpec("saves", "mean", ("save",), (), "count", None, 7)])
    # one shared variable (post, pre, and CUPED++'s pre-period indicator)
    assert len(variables) == 3 and layouts["saves_pm"].post == layouts["saves"].post
    rng = np.random.default_rng(5)
    moments = {1: Moments.from_data(rng.poisson(1.0, (2, 400)).astype(float)),
               2: Moments.from_data(rng.poisson(1.1, (2, 400)).astype(float))}
    variants = [R.VariantInfo(1, "control", 50, True), R.VariantInfo(2, "treatment", 50, False)]
    settings = AnalysisSettings(cuped=True)
    pm = R.metric_result(R.MetricInfo("saves_pm", "Saves", "per_mille", "higher", "primary", (0,), (1,)),
                         variants, moments, settings)
    mean = R.metric_result(R.MetricInfo("saves", "Saves", "mean", "higher", "primary", (0,), (1,)),
                           variants, moments, settings)
    assert pm.kind == "per_mille" and pm.cuped_available is True
    for a, b in zip(pm.variants, mean.variants, strict=True):
        assert a.mean == pytest.approx(1000 * b.mean, rel=1e-12)
        assert a.std_error == pytest.approx(1000 * b.std_error, rel=1e-12)
        assert a.denominator_sum is None
    c, m = pm.comparisons[0], mean.comparisons[0]
    assert c.df is None and m.df > 0  # z (infinite df, stored as null) for the new kind, Welch for the mean
    assert c.relative_lift == pytest.approx(m.relative_lift, rel=1e-9)
    assert c.cuped.relative_lift == pytest.approx(m.cuped.relative_lift, rel=1e-9)
