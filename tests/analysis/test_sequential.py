"""The sequential test: a normal-mixture confidence sequence tuned to the planned size
(Howard et al. 2021; GrowthBook), read as a running minimum p-value and a running
intersection of intervals."""

import math
from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from analysis import results as R
from analysis.report import AnalysisSettings, DailySeries
from analysis.stats.moments import Moments
from analysis.stats.sequential import (
    SequentialResult,
    confidence_sequence,
    planned_variance,
    running,
    tuned_mixture_variance,
)
from dashboard.presenters import chosen

ALPHA = 0.05
METRIC = R.MetricInfo("saves", "Saves", "mean", "higher", "primary", (0,))
VARIANTS = [R.VariantInfo(1, "control", 50, True), R.VariantInfo(2, "treatment", 50, False)]


def growthbook_half_width(sigma2: float, n: float, planned_n: float, alpha: float) -> float:
    """gbstats' asymptotic confidence sequence, written out: ρ tuned for N, then
    sqrt(σ²) · sqrt(2(nρ² + 1)/(n²ρ²) · ln(sqrt(nρ² + 1)/α))."""
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / planned_n
    return math.sqrt(sigma2) * math.sqrt(2 * (n * rho2 + 1) / (n**2 * rho2) * math.log(math.sqrt(n * rho2 + 1) / alpha))


@pytest.mark.parametrize("n", [50, 800, 5_000, 20_000, 400_000])
def test_the_boundary_is_growthbooks_confidence_sequence_at_the_planned_size(n):
    sigma2, planned_n = 3.7, 5_000
    # The MDE whose 80%-power fixed-horizon size is planned_n: then V_N = σ²/N.
    mde = (stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(0.8)) * math.sqrt(sigma2 / planned_n)
    assert planned_variance(mde, ALPHA) == pytest.approx(sigma2 / planned_n, rel=1e-12)
    r = confidence_sequence(0.01, sigma2 / n, mde, ALPHA)
    half = growthbook_half_width(sigma2, n, planned_n, ALPHA)
    assert (r.ci_high - r.ci_low) / 2 == pytest.approx(half, rel=1e-9)
    assert r.ci_low == pytest.approx(0.01 - half, rel=1e-9)


def test_the_p_value_is_one_over_the_mixture_likelihood_ratio_integrated_numerically():
    estimate, variance, mde = 0.031, 0.01**2, 0.02
    tau2 = tuned_mixture_variance(mde, ALPHA)
    lr, _ = integrate.quad(lambda th: stats.norm.pdf(estimate, th, math.sqrt(variance))
                           / stats.norm.pdf(estimate, 0, math.sqrt(variance))
                           * stats.norm.pdf(th, 0, math.sqrt(tau2)), -1, 1, points=[0, estimate], limit=200)
    r = confidence_sequence(estimate, variance, mde, ALPHA)
    assert r.p_value == pytest.approx(min(1.0, 1 / lr), rel=1e-6)
    # The interval's ends are where the mixture ratio reaches 1/α.
    for end in (r.ci_low, r.ci_high):
        at_end, _ = integrate.quad(lambda th, e=end: stats.norm.pdf(estimate, th, math.sqrt(variance))
                                   / stats.norm.pdf(estimate, e, math.sqrt(variance))
                                   * stats.norm.pdf(th - e, 0, math.sqrt(tau2)), -1, 1, points=[end, estimate],
                                   limit=200)
        assert at_end == pytest.approx(1 / ALPHA, rel=1e-6)


def test_the_tuned_mixture_is_nearly_the_narrowest_at_the_planned_size():
    sigma2, planned_n = 1.0, 10_000
    mde = (stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(0.8)) * math.sqrt(sigma2 / planned_n)
    tuned = confidence_sequence(0.0, sigma2 / planned_n, mde, ALPHA)
    from analysis.stats.sequential import msprt

    widths = [msprt(0.0, sigma2 / planned_n, math.sqrt(sigma2 / planned_n) * k, ALPHA).ci_high
              for k in np.geomspace(0.3, 30, 400)]
    assert tuned.ci_high <= min(widths) * 1.005
    # and clearly narrower there than mixtures tuned far from N
    assert tuned.ci_high < msprt(0.0, sigma2 / planned_n, 10 * math.sqrt(sigma2 / planned_n), ALPHA).ci_high * 0.95


looks = st.lists(st.tuples(st.floats(-0.5, 0.5), st.floats(1e-6, 0.05)), min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(looks, st.floats(0.005, 0.3))
def test_the_running_p_value_never_rises_and_significance_never_flips_back(sequence, mde):
    so_far = None
    last_p, last_low, last_high = 1.0, -math.inf, math.inf
    was_significant = False
    for estimate, se in sequence:
        so_far = running(so_far, confidence_sequence(estimate, se**2, mde, ALPHA))
        test = R._sequential(so_far, ALPHA)
        assert 0 <= test.p_value <= last_p
        assert test.significant or not was_significant
        if test.ci_low is None:  # an empty intersection: only ever once the test has rejected
            assert test.significant
            last_low, last_high = math.inf, -math.inf
        else:
            assert last_low <= test.ci_low <= test.ci_high <= last_high
            assert test.significant == (test.ci_low > 0 or test.ci_high < 0)
            last_low, last_high = test.ci_low, test.ci_high
        last_p, was_significant = test.p_value, test.significant


def test_running_keeps_the_earlier_look_when_a_look_has_no_answer():
    earlier = SequentialResult(0.01, 0.02, 0.09)
    assert running(earlier, SequentialResult(math.nan, math.nan, math.nan)) == earlier


def _arm(rng, n, mean):
    x = rng.normal(mean, 2.0, n)
    return Moments(n, (float(x.sum()),), ((float((x * x).sum()),),))


def _series(rng, looks, per_look, lift, settings):
    days = [date(2026, 1, 1) + timedelta(d) for d in range(looks)]
    cumulative = {1: [], 2: []}
    for _ in days:
        for vid, mean in ((1, 1.0), (2, 1.0 * (1 + lift))):
            m = _arm(rng, per_look, mean)
            cumulative[vid].append(cumulative[vid][-1] + m if cumulative[vid] else m)
    return R.daily_series(METRIC, VARIANTS, days, cumulative, settings), cumulative


def test_aa_with_20_looks_keeps_the_false_positive_rate_under_5_percent():
    # Production code (results.daily_series) on 400 A/A experiments, 20 looks each,
    # sized so that the MDE (10%) has 80% power at the last look.
    rng = np.random.default_rng(16)
    settings = AnalysisSettings(sequential_tau=0.1, minimum_detectable_effect=0.1)
    per_look = math.ceil(2 * 4.0 * (1.96 + 0.8416) ** 2 / 0.1**2 / 20)
    runs = 400
    rejected = sum(_series(rng, 20, per_look, 0.0, settings)[0].days[-1].comparisons[0].sequential_p_value < 0.05
                   for _ in range(runs))
    # Ville's bound gives at most 5%; 400 runs add a binomial 2-sd tolerance of 2.2 points.
    assert rejected / runs <= 0.05 + 0.022


def test_the_report_carries_the_series_running_values_and_the_page_agrees_with_its_interval():
    rng = np.random.default_rng(7)
    settings = AnalysisSettings(sequential_tau=0.1, minimum_detectable_effect=0.1, cuped=False)
    for _ in range(40):
        series, cumulative = _series(rng, 8, 300, 0.08, settings)
        moments = {vid: days[-1] for vid, days in cumulative.items()}
        report = R.build_report("exp", VARIANTS, [METRIC], moments, settings, 8.0, series)
        c = report.metrics[0].comparisons[0]
        ps = [d.comparisons[0].sequential_p_value for d in series.days]
        assert ps == sorted(ps, reverse=True)
        assert c.sequential.p_value <= min(ps) + 1e-15
        shown = chosen(c, cuped=False, sequential=True)
        if shown.ci_low is not None:
            assert shown.significant == (shown.ci_low > 0 or shown.ci_high < 0)
        assert shown.significant == (min(ps) < 0.05)


def test_the_series_continues_the_running_values_of_the_days_carried_over():
    rng = np.random.default_rng(3)
    settings = AnalysisSettings(sequential_tau=0.1, minimum_detectable_effect=0.1)
    series, cumulative = _series(rng, 6, 300, 0.1, settings)
    head = DailySeries(metric=METRIC.key, days=series.days[:5])
    tail = R.daily_series(METRIC, VARIANTS, [series.days[5].day], {v: [d[5]] for v, d in cumulative.items()},
                          settings, previous=head)
    assert tail.days[0].comparisons[0] == series.days[5].comparisons[0]
