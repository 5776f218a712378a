"""The power calculator on any input: a number or None ("cannot say"), never an
exception; and the power endpoint answers bad parameters with 400, never 500."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analysis.stats.power import MIN_USERS, detectable_effect, plan, power_at, users_per_variant
from tests.analysis.conftest import make_experiment
from tests.conftest import as_user

anything = st.floats(allow_nan=True, allow_infinity=True)
positive = st.floats(min_value=1e-300, max_value=1e300)


@settings(max_examples=400, deadline=None)
@given(mde=anything, mean=anything, variance=anything, alpha=st.floats(0.0001, 0.5), power=st.floats(0.05, 0.999))
def test_users_per_variant_is_a_whole_number_or_none_for_any_input(mde, mean, variance, alpha, power):
    n = users_per_variant(mde, mean, variance, alpha, power)
    assert n is None or (isinstance(n, int) and MIN_USERS <= n <= 2**53)
    if n is not None and n > MIN_USERS:
        # The promise holds: n users give at least the asked-for power, n - 1 do not.
        d = mde * abs(mean) / math.sqrt(variance)
        z = stats.norm.ppf(1 - alpha / 2)
        achieved = stats.norm.cdf(d * math.sqrt(n / 2) - z) + stats.norm.cdf(-d * math.sqrt(n / 2) - z)
        assert achieved >= power - 1e-6


@settings(max_examples=300, deadline=None)
@given(n=anything, mean=anything, variance=anything)
def test_detectable_effect_and_power_now_never_raise(n, mean, variance):
    mde = detectable_effect(n, mean, variance)
    assert mde is None or (math.isfinite(mde) and mde > 0)
    p = power_at(0.05, n, mean, variance)
    assert p is None or 0 <= p <= 1


@settings(max_examples=200, deadline=None)
@given(mde=positive, mean=anything, variance=anything, n=st.integers(0, 10**9), days=anything)
def test_a_plan_is_made_for_any_report(mde, mean, variance, n, days):
    result = plan(mde, mean, variance, n, days)
    assert result.days_needed is None or result.days_needed >= 0


def test_an_effect_too_large_for_statsmodels_root_finder_needs_the_smallest_sample():
    # A conversion rate near 1 and a 5% lift: d is large; statsmodels answers NaN here.
    assert users_per_variant(5.0, 0.99, 0.0099) == MIN_USERS


def test_a_sample_no_experiment_will_have_is_none_not_a_number_json_cannot_carry():
    # d = 1e-10: n ~ 1.6e21, past 64-bit integers (orjson refused it: a 500).
    assert users_per_variant(0.0001, 1.0, 1e12) is None


def test_power_at_or_below_alpha_has_no_sample_size():
    assert users_per_variant(0.05, 0.1, 0.09, alpha=0.2, power=0.1) is None


@pytest.mark.django_db
@pytest.mark.parametrize("query", [
    "users_per_day=2.8e16&unit_variance=7e307&baseline_mean=-2.5e227",  # found by the fuzzer: was a 500
    "baseline_mean=nan&unit_variance=1",
    "baseline_mean=0.1&unit_variance=inf",
    "baseline_mean=0.1&unit_variance=0.09&alpha=0.5&power=0.2",
])
def test_the_power_endpoint_answers_bad_parameters_with_400(viewer, query):
    experiment, _ = make_experiment("default", "planned")
    response = as_user(viewer).get(f"/api/v1/experiments/{experiment.key}/power?{query}")
    assert response.status_code == 400, response.content
    assert isinstance(response.json(), dict) and response.json()


@pytest.mark.django_db
def test_the_power_endpoint_says_null_for_an_effect_too_small_to_ever_detect(viewer):
    experiment, _ = make_experiment("default", "planned")
    response = as_user(viewer).get(f"/api/v1/experiments/{experiment.key}/power?"
                                   "mde=0.0001&baseline_mean=1&unit_variance=1e12")
    assert response.status_code == 200 and response.json()["users_per_variant"] is None


@pytest.mark.django_db
def test_the_power_endpoint_plans_from_given_numbers(viewer):
    experiment, _ = make_experiment("default", "planned")
    body = as_user(viewer).get(f"/api/v1/experiments/{experiment.key}/power?"
                               "baseline_mean=0.05&unit_variance=0.0475&mde=0.1&users_per_day=1000").json()
    assert body["users_per_variant"] == users_per_variant(0.1, 0.05, 0.0475)
    assert body["days_needed"] == pytest.approx(body["users_per_variant"] / 1000)
