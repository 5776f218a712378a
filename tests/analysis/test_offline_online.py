"""Whether offline and online agree, and the rank correlation across experiments: pure,
checked against scipy on the same numbers."""

import random

import pytest
from scipy import stats

from analysis.offline_online import OnlineReading, Row, agreement, spearman, summarize
from dashboard.presenters import summary_sentence
from recommenders.offline_compare import OfflineDifference


def offline(change, comparable=True):
    return OfflineDifference("t", "c", comparable, change if comparable else None,
                             change / 0.1 if comparable else None, "held-out day 2026-12-07" if comparable else None)


def online(value, higher_is_better=True):
    return OnlineReading("relative_lift", "Hide rate", value, value - 0.01, value + 0.01, False, higher_is_better)


def test_a_fall_of_a_lower_is_better_metric_agrees_with_ndcg_going_up():
    assert agreement(offline(0.01), online(-0.02, higher_is_better=False)) is True
    assert agreement(offline(0.01), online(0.02, higher_is_better=False)) is False
    assert agreement(offline(0.01), online(0.02)) is True


def test_nothing_to_agree_on_without_both_numbers_or_a_direction():
    assert agreement(offline(0.01, comparable=False), online(0.02)) is None
    assert agreement(offline(0.01), None) is None
    assert agreement(offline(0.0), online(0.02)) is None


def test_spearman_is_scipys_from_three_pairs_and_none_below_or_when_constant():
    assert spearman([0.1, 0.2], [0.3, 0.1]) == (None, None)
    assert spearman([0.1, 0.1, 0.1], [0.3, 0.1, 0.2]) == (None, None)
    rng = random.Random(4)
    x, y = [rng.gauss(0, 1) for _ in range(12)], [rng.gauss(0, 1) for _ in range(12)]
    expected = stats.spearmanr(x, y)
    rho, p = spearman(x, y)
    assert rho == pytest.approx(expected.statistic) and p == pytest.approx(expected.pvalue)


def rows(n, seed=5):
    rng = random.Random(seed)
    return [Row(f"e{i}", f"e{i}", "stopped", "ab", "t", "c", "pixie@2", "pixie@1", offline(rng.uniform(-0.02, 0.02)),
                online(rng.uniform(-0.05, 0.05))) for i in range(n)]


def test_the_summary_counts_rows_that_point_the_same_way_and_says_p_only_with_enough_pairs():
    few, many = rows(4), rows(12)
    s = summarize(few)
    assert s.agree == sum(1 for r in few if (r.offline.ndcg_change > 0) == (r.online.value > 0))
    assert "4 pairs; too few for a p-value" in summary_sentence(few, s)
    s = summarize(many)
    assert f"ρ = {s.spearman:+.2f} (12 pairs; p = " in summary_sentence(many, s)
