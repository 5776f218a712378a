"""Guardrails as non-inferiority tests: the one-sided test against scipy on raw data,
the bound that agrees with it, the verdicts in the report, and the words on the page."""

import math
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analysis import results as R
from analysis.metric_kinds.registry import metric_value
from analysis.models import AnalysisReport
from analysis.report import AnalysisSettings, GuardrailTest, MetricCap, Report
from analysis.stats.moments import Moments
from analysis.stats.noninferiority import non_inferiority
from dashboard import presenters
from experiments import services
from tests.conftest import as_user

ALPHA = 0.05


def _value(kind, x):
    return metric_value(kind, Moments.from_data(np.asarray(x, dtype=float)))


@pytest.mark.parametrize("higher", [True, False])
@pytest.mark.parametrize("shift", [-0.06, -0.01, 0.0, 0.01, 0.06])
def test_the_mean_test_is_scipys_welch_test_of_the_treatment_against_the_scaled_control(rng, higher, shift):
    margin = 0.03
    control = rng.gamma(1.5, 2.0, 3_000)
    treatment = rng.gamma(1.5, 2.0, 2_000) * (1 + shift)
    got = non_inferiority(_value("mean", treatment), _value("mean", control), margin, higher, ALPHA)
    theta = 1 - margin if higher else 1 + margin
    expected = stats.ttest_ind(treatment, theta * control, equal_var=False,
                               alternative="greater" if higher else "less").pvalue
    assert got.p_value == pytest.approx(expected, rel=1e-9)
    assert got.within_margin == (expected < ALPHA)


@pytest.mark.parametrize("higher", [True, False])
def test_the_proportion_test_is_the_unpooled_z_test_on_raw_data(rng, higher):
    margin = 0.02
    control = (rng.random(20_000) < 0.30).astype(float)
    treatment = (rng.random(20_000) < 0.30).astype(float)
    got = non_inferiority(_value("proportion", treatment), _value("proportion", control), margin, higher, ALPHA)
    theta = 1 - margin if higher else 1 + margin
    pt, pc = treatment.mean(), control.mean()
    z = (pt - theta * pc) / math.sqrt(pt * (1 - pt) / treatment.size + theta**2 * pc * (1 - pc) / control.size)
    expected = stats.norm.sf(z) if higher else stats.norm.cdf(z)
    assert got.p_value == pytest.approx(expected, rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 5_000), pt=st.floats(0.01, 0.99), pc=st.floats(0.01, 0.99), margin=st.floats(0.0, 0.5),
       higher=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_within_the_margin_exactly_when_the_bound_is_inside_it_and_the_bound_is_where_the_test_flips(
        n, pt, pc, margin, higher, seed):
    rng = np.random.default_rng(seed)
    t = _value("proportion", (rng.random(n) < pt).astype(float))
    c = _value("proportion", (rng.random(n) < pc).astype(float))
    got = non_inferiority(t, c, margin, higher, ALPHA)
    assert not got.p_value < 0 and not got.p_value > 1
    if not math.isfinite(got.bound):
        assert not got.within_margin
        return
    assert got.within_margin == (got.p_value < ALPHA)
    # The bound is the margin at which the one-sided test sits exactly at alpha.
    at_bound = non_inferiority(t, c, -got.bound if higher else got.bound, higher, ALPHA)
    if math.isfinite(at_bound.p_value) and got.bound > -1:
        assert at_bound.p_value == pytest.approx(ALPHA, abs=1e-6)


GUARD = R.MetricInfo("saves_per_user", "Saves per user", "mean", "higher", "guardrail", (0,), guardrail_margin=0.02)
HIDES = R.MetricInfo("hides_per_user", "Hides per user", "mean", "lower", "guardrail", (1,), guardrail_margin=0.02)
VARIANTS = [R.VariantInfo(1, "control", 50, True), R.VariantInfo(2, "treatment", 50, False)]


def _report(rng, n, saves_lift, hides_lift) -> Report:
    def arm(k, s_lift, h_lift):
        return Moments.from_data(np.vstack([rng.poisson(3.0 * s_lift, k), rng.poisson(1.0 * h_lift, k)]))

    moments = {1: arm(n, 1.0, 1.0), 2: arm(n, 1 + saves_lift, 1 + hides_lift)}
    return R.build_report("g", VARIANTS, [GUARD, HIDES], moments, AnalysisSettings(cuped=False), 7.0)


def test_verdicts_within_regressed_inconclusive_and_never_against_significant(rng):
    big = _report(rng, 400_000, 0.0, 0.0)
    assert [m.comparisons[0].guardrail.verdict for m in big.metrics] == ["within_margin", "within_margin"]
    worse = _report(rng, 400_000, -0.05, 0.05)
    for m in worse.metrics:
        c = m.comparisons[0]
        assert c.significant and c.improved is False and c.guardrail.verdict == "regressed"
    small = _report(rng, 200, 0.0, 0.0)
    assert [m.comparisons[0].guardrail.verdict for m in small.metrics] == ["inconclusive", "inconclusive"]
    for report in (big, worse, small):
        assert Report.from_json(report.to_json()) == report
        for m in report.metrics:
            g = m.comparisons[0].guardrail
            assert g.margin == 0.02 and g.bound is not None
            # Lower is better: the upper bound of the lift; higher: the lower bound.
            c = m.comparisons[0]
            assert (g.bound > c.relative_lift) == (m.direction == "lower")
    # A metric that is not a guardrail, or a guardrail without a margin, has no such test.
    plain = R.build_report("g", VARIANTS, [R.MetricInfo("s", "S", "mean", "higher", "secondary", (0,),
                                                        guardrail_margin=0.02)],
                           {1: Moments.from_data(rng.poisson(3.0, (2, 100))),
                            2: Moments.from_data(rng.poisson(3.0, (2, 100)))}, AnalysisSettings(cuped=False), 7.0)
    assert plain.metrics[0].comparisons[0].guardrail is None
    assert "guardrail" not in plain.to_json()["metrics"][0]["comparisons"][0]


def test_the_words_say_the_verdict_the_margin_and_the_bound():
    within = presenters.guardrail_words(GuardrailTest(margin=0.02, bound=0.013, p_value=0.01,
                                                      verdict="within_margin"))
    assert within == ("within the 2.0% margin: at worst +1.30%", "good")
    assert presenters.guardrail_words(GuardrailTest(margin=0.02, bound=0.041, p_value=0.3, verdict="inconclusive")) \
        == ("inconclusive: could be as bad as +4.10%, beyond the 2.0% margin", "neutral")
    assert presenters.guardrail_words(GuardrailTest(margin=0.02, bound=0.09, p_value=0.9, verdict="regressed"))[1] \
        == "bad"
    assert presenters.guardrail_words(None) is None
    assert presenters.cap_words(MetricCap(percentile=99.9, value=13.0)) \
        == "each user's counts capped at the 99.9th percentile (at 13)"
    assert presenters.cap_words(MetricCap(percentile=99.9, value=None, denominator_value=471.94)) \
        == "each user's counts capped at the 99.9th percentile (numerator at —, denominator at 471.94)"
    assert presenters.cap_words(None) is None


def test_the_ship_dialog_warns_of_an_inconclusive_guardrail(rng):
    primary = R.MetricInfo("saves", "Saves per user", "mean", "higher", "primary", (0,))
    moments = {1: Moments.from_data(rng.poisson(3.0, (2, 300))), 2: Moments.from_data(rng.poisson(3.0, (2, 300)))}
    report = R.build_report("g", VARIANTS, [primary, HIDES], moments, AnalysisSettings(cuped=False), 7.0)
    assert report.metrics[1].comparisons[0].guardrail.verdict == "inconclusive"
    advice = presenters.ship_advice(report, "control")
    assert any(w.startswith("Guardrail inconclusive: Hides per user in treatment is not shown to stay within its "
                            "2.0% margin") for w in advice.warnings)


@pytest.mark.django_db
def test_the_results_page_shows_the_guardrail_verdict_in_words(experimenter, rng):
    layer = services.create_layer(key="layer-guard", name="Layer")
    e = services.create_experiment(
        actor=experimenter, layer=layer, key="guard", name="Guard", hypothesis="h", variants=[
        {"key": "control", "weight": 50, "is_control": True, "recommender": {"name": "popularity", "params": {}}},
        {"key": "treatment", "weight": 50, "is_control": False, "recommender": {"name": "popularity", "params": {}}},
    ], primary_metric="closeup_ctr", guardrail_metrics=["hide_rate"])
    report = _report(rng, 400_000, 0.0, 0.08)
    report = replace(report, metrics=(replace(report.metrics[0], cap=MetricCap(percentile=99.9, value=17.0)),
                                      *report.metrics[1:]))
    at = datetime.now(UTC)
    AnalysisReport.objects.create(experiment=e, status="succeeded", started_at=at, computed_at=at, as_of=at,
                                  results=report.to_json(), phase=1 if e.phases.exists() else None)
    page = as_user(experimenter).get(f"/experiments/{e.key}/results").content.decode()
    assert "within the 2.0% margin: at worst" in page  # saves per user
    assert "guardrail regressed: significantly worse than the control (margin 2.0%)" in page  # hides per user
    assert "each user&#x27;s counts capped at the 99.9th percentile (at 17)" in page


def test_by_simulation_within_the_margin_is_rare_at_the_margin_and_usual_without_harm(rng):
    from analysis import validation as V

    at_margin = V.guardrail_runs(rng, 600, V.GUARD_N, 1 + V.GUARD_MARGIN)
    assert at_margin["within_margin"] <= 0.075  # the one-sided test's level, 5%, with simulation noise
    no_harm = V.guardrail_runs(rng, 200, V.GUARD_N, 1.0)
    assert no_harm["within_margin"] >= 0.5 and no_harm["regressed"] <= 0.1


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(["mean", "proportion", "ratio"]), n_c=st.integers(0, 3_000), n_t=st.integers(0, 3_000),
       harm=st.floats(0.5, 1.5), direction=st.sampled_from(["higher", "lower"]), margin=st.floats(0.0, 0.3),
       arms=st.integers(2, 3), correction=st.sampled_from(["holm", "bh", "none"]),
       seed=st.integers(0, 2**32 - 1))
def test_a_guardrail_verdict_never_contradicts_the_comparison_beside_it(kind, n_c, n_t, harm, direction, margin,
                                                                         arms, correction, seed):
    rng = np.random.default_rng(seed)

    def arm(n, scale):
        if kind == "proportion":
            return Moments.from_data((rng.random(n) < min(0.3 * scale, 1.0)).astype(float))
        return Moments.from_data(np.vstack([rng.poisson(2.0 * scale, n), rng.poisson(10.0, n) + 1]).astype(float))

    metric = R.MetricInfo("g", "G", kind, direction, "guardrail", (0, 1) if kind == "ratio" else (0,),
                          guardrail_margin=margin)
    variants = [R.VariantInfo(i + 1, f"v{i}", 50, i == 0) for i in range(arms)]
    moments = {1: arm(n_c, 1.0), **{i + 1: arm(n_t, harm) for i in range(1, arms)}}
    report = R.build_report("g", variants, [metric], moments, AnalysisSettings(cuped=False, correction=correction),
                            7.0)
    for c in report.metrics[0].comparisons:
        g = c.guardrail
        assert g is not None and g.margin == margin
        assert (g.verdict == "regressed") == (c.significant and c.improved is False)
        if g.verdict == "within_margin":
            assert g.bound is not None and (g.bound < margin if direction == "lower" else g.bound > -margin)
            assert g.p_value is not None and g.p_value < ALPHA
        if g.bound is not None and c.relative_lift is not None:
            # The one-sided bound lies on the harmful side of the estimate.
            lift = c.relative_lift
            assert g.bound >= lift - 1e-12 if direction == "lower" else g.bound <= lift + 1e-12
        assert g.p_value is None or 0 <= g.p_value <= 1
