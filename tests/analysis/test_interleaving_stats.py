"""The interleaving preference test computes from three counts exactly what a one-sample
t-test computes on every user's score, and its verdict never contradicts its interval."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analysis.stats.interleaving import (
    MIN_USERS,
    PreferenceCounts,
    preference_test,
    users_for_power,
    winner,
)

counts_strategy = st.builds(PreferenceCounts, st.integers(0, 5_000), st.integers(0, 5_000), st.integers(0, 5_000),
                            st.integers(0, 100))
# The corners: nobody, only ties, all one way, and just around the minimum.
corners = st.one_of(
    st.builds(PreferenceCounts, st.just(0), st.just(0), st.integers(0, 400)),
    st.builds(PreferenceCounts, st.just(0), st.integers(0, 400), st.just(0)),
    st.builds(PreferenceCounts, st.integers(0, 400), st.just(0), st.just(0)),
    st.builds(PreferenceCounts, st.integers(0, 20), st.integers(0, 20), st.integers(0, 20)),
)


def _scores(c: PreferenceCounts) -> np.ndarray:
    return np.repeat([-1.0, 1.0, 0.0], [c.wins_control, c.wins_treatment, c.ties])


@settings(max_examples=400, deadline=None)
@given(counts=st.one_of(counts_strategy, corners), alpha=st.sampled_from([0.01, 0.05, 0.1]))
def test_the_three_counts_give_the_t_test_of_the_per_user_scores(counts, alpha):
    got = preference_test(counts, alpha)
    scores = _scores(counts)
    assert got.users == len(scores)
    if len(scores) == 0:
        assert (got.delta, got.p_value, got.significant, got.enough_data) == (None, None, False, False)
        assert got.more_users == MIN_USERS
        return
    assert got.delta == pytest.approx(scores.mean(), abs=1e-12)
    if len(scores) < MIN_USERS:
        assert not got.enough_data and not got.significant and got.p_value is None
        assert got.more_users == MIN_USERS - len(scores)
        return
    assert got.enough_data and got.more_users is None
    if np.all(scores == scores[0]):
        # scipy gives nan for all ties (0/0) and 0 for all one way; the test says what a reader expects.
        assert got.p_value == (1.0 if scores[0] == 0 else 0.0)
        assert got.ci_low == got.ci_high == got.delta
        assert got.significant == (scores[0] != 0)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nearly constant scores: scipy warns, and still agrees
        ref = stats.ttest_1samp(scores, 0.0)
        low, high = ref.confidence_interval(1 - alpha)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-12)
    assert got.std_error == pytest.approx(np.std(scores, ddof=1) / math.sqrt(len(scores)), rel=1e-9)
    # The interval is the t interval, clipped to the scores' own range [-1, 1].
    assert got.ci_low == pytest.approx(max(low, -1.0), rel=1e-9, abs=1e-12)
    assert got.ci_high == pytest.approx(min(high, 1.0), rel=1e-9, abs=1e-12)
    assert got.significant == (ref.pvalue < alpha) or math.isclose(ref.pvalue, alpha, rel_tol=1e-6)


@settings(max_examples=400, deadline=None)
@given(counts=st.one_of(counts_strategy, corners), alpha=st.floats(0.001, 0.2))
def test_significant_exactly_when_the_interval_excludes_zero(counts, alpha):
    got = preference_test(counts, alpha)
    excludes = got.ci_low is not None and (got.ci_low > 0 or got.ci_high < 0)
    assert got.significant == excludes
    if got.ci_low is not None:
        assert -1.0 <= got.ci_low <= got.delta <= got.ci_high <= 1.0


@settings(max_examples=200, deadline=None)
@given(counts=st.one_of(counts_strategy, corners))
def test_the_winner_is_the_significant_side_and_nobody_otherwise(counts):
    got = preference_test(counts)
    name = winner(got, "control", "treatment")
    if not got.significant:
        assert name is None
    elif counts.wins_treatment > counts.wins_control:
        assert name == "treatment"
    else:
        assert name == "control"


def test_a_clear_preference_names_its_team_and_the_counts_describe_the_users():
    assert winner(preference_test(PreferenceCounts(100, 160, 40)), "old", "new") == "new"
    assert winner(preference_test(PreferenceCounts(160, 100, 40)), "old", "new") == "old"
    assert winner(preference_test(PreferenceCounts(100, 104, 40)), "old", "new") is None
    assert PreferenceCounts(3, 4, 5, uncredited=9).users == 12  # uncredited engagements are not users


def test_users_for_power_reaches_the_promised_power_by_simulation():
    rng = np.random.default_rng(7)
    p_t, p_c = 0.30, 0.24  # the rest tie
    delta, variance = p_t - p_c, p_t + p_c - (p_t - p_c) ** 2
    n = math.ceil(users_for_power(delta, variance))
    draws = rng.multinomial(n, [p_c, p_t, 1 - p_c - p_t], size=2_000)
    power = np.mean([preference_test(PreferenceCounts(*map(int, d))).significant for d in draws])
    assert abs(power - 0.8) <= 0.03  # 2,000 runs: one σ of the measured power is 0.9 points
    assert users_for_power(0.0, variance) is None and users_for_power(delta, 0.0) is None
