"""Mean per user: the average of a per-user count, compared by Welch's t-test."""

from analysis.metric_kinds.base import ANY, MetricKind, PerUserCount, numerator_count
from analysis.stats.frequentist import welch_df
from analysis.stats.moments import MetricValue, Moments


class Mean(MetricKind):
    key = "mean"
    label = "mean per user"

    def per_user_counts(self, metric) -> tuple[PerUserCount, ...]:
        return (numerator_count(metric, metric.aggregation == ANY),)

    def estimate(self, moments: Moments) -> MetricValue:
        # The sample variance (ddof=1), as Welch's t-test uses.
        return MetricValue(self, moments.n, float(moments.mean[0]), float(moments.covariance[0, 0]), (1.0,))

    def degrees_of_freedom(self, treatment: MetricValue, control: MetricValue) -> float:
        return welch_df(treatment, control)
