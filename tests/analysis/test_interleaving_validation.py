"""The interleaving simulation, small: an A/A interleaving test is calibrated, its winner
agrees with a significant A/B test of the same rankers, and it needs fewer users. The
full-size figures are in docs/validation.md."""

import math

import numpy as np
import pytest

from analysis import interleaving_validation as IV
from analysis import validation


@pytest.fixture(scope="module")
def bank():
    # Small banks: this test needs seconds, not the report's minute.
    return IV.make_bank(np.random.default_rng(11), aa=10_000, ab=12_000, clicks=60_000)


def test_an_aa_interleaving_test_rejects_at_about_alpha(bank):
    runs = 400
    rate = IV.aa_rate(np.random.default_rng(1), bank, runs, 500)
    # 3.5 binomial σ around 5%; the bank's own noise moves the rate by well under a point.
    band = 3.5 * math.sqrt(0.05 * 0.95 / runs)
    assert abs(rate - 0.05) <= band


def test_interleaving_agrees_with_a_significant_ab_test_and_needs_fewer_users(bank):
    rng = np.random.default_rng(2)
    sens = IV.sensitivity(rng, bank, population=200_000)
    assert sens.ab_lift > 0 and sens.delta > 0  # the treatment is the better ranker, by both measures
    assert sens.ratio > 1
    agree = IV.agreement(rng, bank, 60, sens.ab_users)
    assert agree.ab_significant >= 30  # sized for 80% power
    assert agree.same_winner / agree.ab_significant >= 0.9
    # At its computed size interleaving has about the promised power (80 runs: σ ≈ 4.5 points).
    assert 0.62 <= IV.power_rate(rng, bank, 80, sens.interleaving_users) <= 0.95


def test_one_ranker_on_both_teams_credits_neither_team_more():
    rng = np.random.default_rng(5)
    credits = IV.user_credits(rng, IV.interleaved_lists(rng, 4_000, 0.03, 0.03, "aa"), 20_000)
    diff = credits[:, 1] - credits[:, 0]
    assert abs(diff.mean()) <= 4 * diff.std() / math.sqrt(len(diff))
    assert credits.sum() > 0


def test_the_report_section_prints_its_three_figures():
    section = validation.interleaving_section(np.random.default_rng(3), 20, lambda total, desc: validation._NoBar())
    assert [line.split(":")[0] for line in section.summary] == [
        "interleaving A/A false positive rate", "interleaving agrees with significant A/B", "interleaving sensitivity"]
    assert "× fewer users than A/B" in section.summary[2]
    assert len(section.rows) == 6 and len(section.passed) == 5


def test_the_ab_per_user_variance_with_differing_users_is_what_a_direct_simulation_gives(bank):
    """The A/B size of the sensitivity figure rests on a closed form of the per-user mean and
    variance of clicks (law of total variance); here it meets users simulated visit by visit."""
    rng, model, n = np.random.default_rng(8), IV.DIFFERING, 60_000
    owner = IV._visits(rng, n, model)
    propensity = rng.gamma(model.propensity_shape, 1 / model.propensity_shape, n)
    relevance = IV._pools(rng, owner.size)
    shown, _ = IV._ranked(rng, relevance, IV.SIGMA_CONTROL)
    p_click = IV._p_click(relevance, shown) * propensity[owner][:, None]
    clicks = np.bincount(owner, weights=(rng.random(p_click.shape) < p_click).sum(axis=1), minlength=n)
    mean, variance = IV.clicks_per_user(bank, 0, model)
    assert clicks.mean() == pytest.approx(mean, rel=0.02)
    assert clicks.var() == pytest.approx(variance, rel=0.05)
    # And users who differ make an A/B test need more users, not interleaving.
    alike, differing = (IV.sensitivity(rng, bank, 200_000, model=m) for m in (IV.ALIKE, IV.DIFFERING))
    assert differing.ab_users > 1.5 * alike.ab_users and differing.ratio > alike.ratio
