"""Proportion of users: the share of users with any such event, compared by the Wald z-test."""

from analysis.metric_kinds.base import ANY, MetricKind, PerUserCount, numerator_count
from analysis.stats.moments import MetricValue, Moments


class Proportion(MetricKind):
    key = "proportion"
    label = "proportion of users"

    def per_user_counts(self, metric) -> tuple[PerUserCount, ...]:
        return (numerator_count(metric, True),)

    def estimate(self, moments: Moments) -> MetricValue:
        # p(1 − p): the population form the Wald z-test uses.
        p = float(moments.mean[0])
        return MetricValue(self, moments.n, p, p * (1.0 - p), (1.0,))

    def problems(self, metric) -> dict[str, str]:
        problems = super().problems(metric)
        if metric.aggregation != ANY:
            problems["aggregation"] = "A proportion counts users with any such event: use 'any'."
        return problems
