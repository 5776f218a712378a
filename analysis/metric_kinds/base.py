"""What a metric kind decides: how its per-user variables are counted, its value and
variance from their moments, its test, and which definitions it accepts.

A kind never writes SQL: it describes its per-user counts (`PerUserCount`) and
analysis/sufficient_statistics.py renders them, so the kinds stay pure (no Django).
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from analysis.stats.moments import MetricValue, Moments

ANY = "any"  # the aggregation that makes a count 0/1 per user
# What a per-user variable adds up over the user's matching events: how many there are,
# the sum of their values, or on how many distinct UTC days they happened.
COUNT, VALUE, DAYS = "count", "value", "days"
MEASURES = {"any": COUNT, "count": COUNT, "sum": VALUE, "days": DAYS}


class Definition(Protocol):
    """What a kind reads of a metric: a Metric row, or sufficient_statistics.MetricSpec."""

    kind: str
    numerator_types: Sequence[str]
    denominator_types: Sequence[str]
    aggregation: str


@dataclass(frozen=True)
class PerUserCount:
    """One per-user variable: the user's events of `types` that pass `filters`, counted
    (or their values summed, or their distinct days counted: `measure`), or 0/1 when `any`."""

    types: tuple[str, ...]
    any: bool
    measure: str = COUNT
    # ((property, op, values), …): op "eq", "neq" or "in", values a tuple of strings.
    filters: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


def filters_of(filters) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """A definition's filters ([{"property", "op", "value"}] or already tuples) as sorted
    tuples, so metrics filtering alike share one variable."""
    out = []
    for f in filters or ():
        if isinstance(f, dict):
            value = f["value"]
            out.append((f["property"], f["op"], tuple(value) if isinstance(value, list | tuple) else (value,)))
        else:
            out.append((f[0], f[1], tuple(f[2])))
    return tuple(sorted(out))


def numerator_count(metric, any_event: bool) -> PerUserCount:
    return PerUserCount(sorted_types(metric.numerator_types), any_event,
                        COUNT if any_event else MEASURES.get(metric.aggregation, COUNT),
                        filters_of(getattr(metric, "numerator_filters", ())))


class MetricKind(ABC):
    key: ClassVar[str]
    label: ClassVar[str]  # what the metric form and the admin call it
    has_denominator: ClassVar[bool] = False

    @abstractmethod
    def per_user_counts(self, metric: Definition) -> tuple[PerUserCount, ...]:
        """The per-user variables, numerator first. The CUPED covariate counts the same
        events before the first exposure, so it needs no description of its own."""

    def value(self, moments: Moments) -> MetricValue:
        """The value from the moments of the per-user counts; undefined (nan) without users."""
        if moments.n == 0:
            nan = float("nan")
            return MetricValue(self, 0, nan, nan, (nan,) * len(moments.sums))
        return self.estimate(moments)

    @abstractmethod
    def estimate(self, moments: Moments) -> MetricValue:
        """`value` for at least one user."""

    def degrees_of_freedom(self, treatment: MetricValue, control: MetricValue) -> float:
        """Of the test of a treatment against its control: inf is the z-test."""
        return float("inf")

    def problems(self, metric: Definition) -> dict[str, str]:
        """{field: message} for what this kind cannot compute; empty when it can."""
        if metric.denominator_types:
            return {"denominator_types": "Only ratio metrics have a denominator."}
        if getattr(metric, "denominator_filters", None):
            return {"denominator_filters": "Only ratio metrics have a denominator."}
        if getattr(metric, "denominator_aggregation", COUNT) != COUNT:
            return {"denominator_aggregation": "Only ratio metrics have a denominator."}
        return {}

    def __repr__(self) -> str:
        return f"<metric kind {self.key}>"


def sorted_types(types: Sequence[str]) -> tuple[str, ...]:
    """Event types in one order, so metrics counting the same events share one variable."""
    return tuple(sorted(types))
