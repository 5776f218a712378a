"""SRM, corrections for many comparisons, sequential and Bayesian answers, power."""

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from analysis.metric_kinds.registry import metric_value
from analysis.stats.bayesian import chance_to_beat
from analysis.stats.frequentist import compare
from analysis.stats.moments import Moments
from analysis.stats.multiple_testing import adjust
from analysis.stats.power import detectable_effect, users_per_variant
from analysis.stats.sequential import msprt
from analysis.stats.srm import sample_ratio_mismatch


def test_srm_matches_scipy_chisquare():
    observed = {"control": 50_410, "a": 49_700, "b": 25_300}
    weights = {"control": 40, "a": 40, "b": 20}
    result = sample_ratio_mismatch(observed, weights)
    total = sum(observed.values())
    ref = stats.chisquare(list(observed.values()), [total * 0.4, total * 0.4, total * 0.2])
    assert result.p_value == pytest.approx(ref.pvalue, abs=1e-9)
    assert result.statistic == pytest.approx(ref.statistic, rel=1e-9)
    assert result.flagged == (ref.pvalue < 0.001)


def test_srm_flags_a_two_percent_loss_of_one_arm_and_rarely_flags_a_fair_split():
    rng = np.random.default_rng(3)
    flagged_fair = flagged_lossy = 0
    runs = 2_000
    for _ in range(runs):
        # 150,000 users per arm. A 2% loss of n per arm shifts the split by z ≈ 0.0142·√n
        # standard errors: at 50,000 that is 3.2, short of the 0.001 threshold's 3.29 half
        # the time; 95% detection needs z ≈ 3.29 + 1.64, so n ≥ 121,000.
        n = rng.binomial(300_000, 0.5)
        fair = {"control": int(n), "treatment": int(300_000 - n)}
        flagged_fair += sample_ratio_mismatch(fair, {"control": 50, "treatment": 50}).flagged
        lossy = {"control": int(n), "treatment": int(rng.binomial(300_000 - n, 0.98))}
        flagged_lossy += sample_ratio_mismatch(lossy, {"control": 50, "treatment": 50}).flagged
    assert flagged_fair / runs <= 0.004
    assert flagged_lossy / runs >= 0.95


def test_a_variant_with_zero_weight_that_got_users_is_a_mismatch():
    result = sample_ratio_mismatch({"control": 100, "off": 3}, {"control": 100, "off": 0})
    assert result.flagged and result.p_value == 0.0


@pytest.mark.parametrize("method,ref", [("holm", "holm"), ("bh", "fdr_bh")])
def test_corrections_match_statsmodels_multipletests(method, ref):
    rng = np.random.default_rng(1)
    p = list(rng.uniform(0, 0.2, size=17)) + [0.0001, 0.049, 0.9]
    ours = adjust(p, method)
    expected = multipletests(p, method=ref)[1]
    assert ours == pytest.approx(list(expected), abs=1e-12)


def test_corrections_skip_missing_p_values():
    assert adjust([0.01, None, 0.04], "holm") == pytest.approx([0.02, None, 0.04])


def test_msprt_p_value_and_confidence_sequence_agree():
    for estimate in np.linspace(-0.1, 0.1, 41):
        r = msprt(float(estimate), variance=0.02**2, tau=0.03)
        excludes_zero = r.ci_low > 0 or r.ci_high < 0
        assert (r.p_value < 0.05) == excludes_zero


def test_msprt_with_a_daily_look_keeps_the_false_positive_rate_while_naive_peeking_inflates_it():
    # A/A: 14 daily looks at a growing sample. Stopping at the first significant look
    # must stay under 5% with the always-valid p-value; the fixed-horizon t-test
    # peeked at daily goes well over.
    rng = np.random.default_rng(14)
    runs, days, per_day = 2_000, 14, 500
    seq_hits = naive_hits = 0
    for _ in range(runs):
        daily = rng.normal(1.0, 2.0, size=(2, days, per_day))
        sums, squares = daily.sum(axis=2).cumsum(axis=1), (daily**2).sum(axis=2).cumsum(axis=1)
        seq = naive = False
        for d in range(days):
            n = per_day * (d + 1)
            c, t = (metric_value("mean", Moments(n, (sums[a, d],), ((squares[a, d],),))) for a in (0, 1))
            r = compare(t, c)
            seq |= msprt(r.relative_lift, r.relative_se**2, tau=0.05).p_value < 0.05
            naive |= r.p_value < 0.05
        seq_hits += seq
        naive_hits += naive
    assert seq_hits / runs <= 0.05
    assert naive_hits / runs > 0.12


def test_chance_to_beat_control_matches_a_monte_carlo_over_beta_posteriors():
    rng = np.random.default_rng(2)
    n, clicks_c, clicks_t = 20_000, 2_000, 2_090
    c = np.concatenate([np.ones(clicks_c), np.zeros(n - clicks_c)])
    t = np.concatenate([np.ones(clicks_t), np.zeros(n - clicks_t)])
    r = compare(metric_value("proportion", Moments.from_data(t)), metric_value("proportion", Moments.from_data(c)))
    ours = chance_to_beat(r.relative_lift, r.relative_se).chance_to_beat_control
    draws_c = rng.beta(1 + clicks_c, 1 + n - clicks_c, size=400_000)
    draws_t = rng.beta(1 + clicks_t, 1 + n - clicks_t, size=400_000)
    assert ours == pytest.approx(float(np.mean(draws_t > draws_c)), abs=0.01)
    lower = chance_to_beat(r.relative_lift, r.relative_se, higher_is_better=False).chance_to_beat_control
    assert lower == pytest.approx(1 - ours, abs=1e-12)


def test_a_prior_pulls_the_posterior_towards_zero():
    flat = chance_to_beat(0.05, 0.02)
    shrunk = chance_to_beat(0.05, 0.02, prior_sd=0.02)
    assert shrunk.posterior_mean == pytest.approx(0.025)
    assert shrunk.chance_to_beat_control < flat.chance_to_beat_control


def test_power_calculator_sample_size_gives_the_promised_power_by_simulation():
    rng = np.random.default_rng(8)
    p, mde = 0.10, 0.05
    n = users_per_variant(mde, p, p * (1 - p), alpha=0.05, power=0.8)
    # The textbook formula: 2·(z_{α/2} + z_β)²·σ²/δ².
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert n == math.ceil(2 * z**2 * p * (1 - p) / (p * mde) ** 2)
    hits, runs = 0, 2_000
    for _ in range(runs):
        c = rng.binomial(n, p)
        t = rng.binomial(n, p * (1 + mde))
        mc = Moments(n, (float(c),), ((float(c),),))
        mt = Moments(n, (float(t),), ((float(t),),))
        hits += compare(metric_value("proportion", mt), metric_value("proportion", mc)).p_value < 0.05
    assert hits / runs == pytest.approx(0.8, abs=0.03)
    assert detectable_effect(n, p, p * (1 - p)) == pytest.approx(mde, rel=1e-3)
