"""Registered metric kinds by key. The Metric model's choices, its validation, the SQL
planner and the statistics ask here; nothing else knows a kind by its name."""

from analysis.metric_kinds.base import Definition, MetricKind
from analysis.metric_kinds.mean import Mean
from analysis.metric_kinds.proportion import Proportion
from analysis.metric_kinds.ratio import Ratio
from analysis.stats.moments import MetricValue, Moments

REGISTRY: dict[str, MetricKind] = {}


def register(kind: MetricKind) -> MetricKind:
    if kind.key in REGISTRY:
        raise ValueError(f"metric kind {kind.key!r} is registered already")
    REGISTRY[kind.key] = kind
    return kind


# Registered here rather than by import side effects: this order is the one the metric
# form and the admin offer, and migration 0001 records it.
for _kind in (Proportion(), Mean(), Ratio()):
    register(_kind)


def names() -> list[str]:
    return sorted(REGISTRY)


def choices() -> list[tuple[str, str]]:
    return [(kind.key, kind.label) for kind in REGISTRY.values()]


def get(key: str) -> MetricKind:
    try:
        return REGISTRY[key]
    except KeyError:
        raise ValueError(f"unknown metric kind {key!r}; registered: {', '.join(names())}") from None


def validate(metric: Definition) -> dict[str, str]:
    """{field: message} for a metric definition its kind cannot compute; empty when it
    can. An unknown kind is left to the kind field's own choices."""
    kind = REGISTRY.get(metric.kind)
    return kind.problems(metric) if kind else {}


def metric_value(key: str, moments: Moments) -> MetricValue:
    return get(key).value(moments)
