"""Ratio of totals: Σ numerator / Σ denominator over users, with the delta method's
variance (Kohavi, Tang and Xu 2020, ch. 18; Deng et al. 2018), compared by a z-test:

    Var(x̄/ȳ) ≈ (σx²/μy² − 2μx·σxy/μy³ + μx²·σy²/μy⁴) / n

Users, not events, are the independent units, so a user's correlated events are fine.
"""

import numpy as np

from analysis.metric_kinds.base import (
    ANY,
    COUNT,
    MEASURES,
    MetricKind,
    PerUserCount,
    filters_of,
    numerator_count,
    sorted_types,
)
from analysis.stats.moments import MetricValue, Moments


class Ratio(MetricKind):
    key = "ratio"
    label = "ratio of totals"
    has_denominator = True

    def per_user_counts(self, metric) -> tuple[PerUserCount, ...]:
        numerator = numerator_count(metric, metric.aggregation == ANY)
        denominator_filters = filters_of(getattr(metric, "denominator_filters", ()))
        measure = MEASURES.get(getattr(metric, "denominator_aggregation", COUNT), COUNT)
        same_events = sorted_types(metric.denominator_types) == numerator.types and \
            denominator_filters == numerator.filters and measure == COUNT
        # "any" makes the numerator 0/1 per user; the denominator stays a count unless it
        # counts the very same events (and is then the same variable).
        return (numerator, PerUserCount(sorted_types(metric.denominator_types), numerator.any and same_events,
                                        measure, denominator_filters))

    def estimate(self, moments: Moments) -> MetricValue:
        mx, my = (float(x) for x in moments.mean[:2])
        if my == 0:
            nan = float("nan")
            return MetricValue(self, moments.n, nan, nan, (nan, nan))
        g = np.array([1.0 / my, -mx / my**2])  # the gradient of x/y: the linearisation's weights
        # Clipped: with one user the form is 0 in exact arithmetic and can round below it.
        variance = max(float(g @ moments.covariance[:2, :2] @ g), 0.0)
        return MetricValue(self, moments.n, mx / my, variance, tuple(g))

    def problems(self, metric) -> dict[str, str]:
        if not metric.denominator_types:
            return {"denominator_types": "A ratio metric needs denominator event types."}
        return {}
