"""No verdict contradicts the interval shown beside it: over random data, for every
metric kind, variant count and correction, a comparison is significant exactly when its
absolute and its relative interval both exclude 0, CUPED's likewise; and relative
intervals of counts never fall below -100%."""

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import results as R
from analysis.report import AnalysisSettings
from analysis.stats.moments import Moments

METRICS = [
    R.MetricInfo("ctr", "CTR", "ratio", "higher", "primary", (0, 1), (3, 4)),
    R.MetricInfo("hides", "Hides", "ratio", "lower", "guardrail", (2, 1)),
    R.MetricInfo("clicks", "Clicks", "mean", "higher", "guardrail", (0,), (3,)),
    R.MetricInfo("engaged", "Engaged", "proportion", "higher", "secondary", (5,)),
]


def _arm(rng, n, lift, activity):
    imp = rng.poisson(activity, n).astype(float)
    clicks = rng.binomial(imp.astype(int), min(0.9, 0.05 * lift)).astype(float)
    hides = rng.binomial(imp.astype(int), 0.01).astype(float)
    pre_clicks = rng.binomial(imp.astype(int), 0.05).astype(float)
    return np.vstack([clicks, imp, hides, pre_clicks, imp, (clicks > 0).astype(float)])


def _excludes_zero(low, high) -> bool:
    return low is not None and high is not None and (low > 0 or high < 0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), arms=st.integers(2, 4), n=st.integers(2, 3000),
       lift=st.floats(0.5, 2.0), activity=st.floats(0.2, 30.0),
       correction=st.sampled_from(["holm", "bh", "none"]), cuped=st.booleans())
def test_significant_exactly_when_the_shown_intervals_exclude_zero(seed, arms, n, lift, activity, correction, cuped):
    rng = np.random.default_rng(seed)
    variants = [R.VariantInfo(i + 1, "control" if i == 0 else f"t{i}", 100 / arms, i == 0) for i in range(arms)]
    moments = {v.id: Moments.from_data(_arm(rng, n, lift if i else 1.0, activity)) for i, v in enumerate(variants)}
    report = R.build_report("prop", variants, METRICS, moments,
                            AnalysisSettings(correction=correction, cuped=cuped), days_running=1.0)
    for metric in report.metrics:
        for c in metric.comparisons:
            assert c.p_value is None or 0 <= c.p_value <= 1
            shown = [(c.absolute_ci_low, c.absolute_ci_high)]
            if c.ci_low is not None:
                shown.append((c.ci_low, c.ci_high))
                assert c.ci_low >= -1.0 - 1e-12  # counts fall by 100% at most
            for low, high in shown:
                if low is not None and not math.isclose(low, 0, abs_tol=1e-12) \
                        and not math.isclose(high, 0, abs_tol=1e-12):
                    assert c.significant == _excludes_zero(low, high), (metric.metric, c)
            if c.cuped is not None and c.cuped.absolute_ci_low is not None:
                low, high = c.cuped.absolute_ci_low, c.cuped.absolute_ci_high
                if not (math.isclose(low, 0, abs_tol=1e-12) or math.isclose(high, 0, abs_tol=1e-12)):
                    assert c.cuped.significant == _excludes_zero(low, high)
