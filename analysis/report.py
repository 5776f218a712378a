"""The report of one analysis run, typed: what analysis/results.py builds and every
reader (the API, the dashboard, the CSV export, the next run's daily series) reads.
Pure: no Django.

JSON exists only at the edges. `Report.to_json()` is the document stored in
AnalysisReport.results and served by the API (docs/statistics.md lists its fields, in
this order); `Report.from_json()` reads a stored document back, including one written
by an earlier version: a key it lacks reads as the field's default, an empty
collection, or None.

A number the statistics leave undefined (nan, ±inf) is None here, as it is null in the
document; so a report survives from_json(to_json(report)) == report.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from datetime import date
from functools import cache
from typing import Self

# Field metadata. "key": the field's name in the document when it differs;
# "omit_if_none": the document leaves the key out, rather than writing null, when there
# is nothing to say (no CUPED for the metric, no segments asked for).
OMITTED_WHEN_NONE = {"omit_if_none": True}


def _number(value):
    """As the document holds a number: numpy scalars as Python ones, nan and ±inf as None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json(value):
    if isinstance(value, _Part):
        return value.to_json()
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


@cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _optional_of(hint):
    """X for X | None; the hint itself otherwise."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


@cache
def _shapes(cls) -> tuple[tuple[str, str], ...]:
    """(field, "number" | "mapping" | "sequence") for the fields __post_init__ normalises."""
    out = []
    for name, hint in _hints(cls).items():
        hint = _optional_of(hint)
        if hint in (float, int, bool):
            out.append((name, "number"))
        elif typing.get_origin(hint) is dict:
            out.append((name, "mapping"))
        elif typing.get_origin(hint) is tuple:
            out.append((name, "sequence"))
    return tuple(out)


def _reader(hint):
    """How to read a JSON value as the field's type (None: as it is): nested parts,
    tuples of them, dates."""
    hint = _optional_of(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        item = _reader(args[0]) or (lambda raw: raw)
        return lambda raw: tuple(item(x) for x in raw)
    if origin is dict:
        return dict
    if hint is date:
        return date.fromisoformat
    if isinstance(hint, type) and issubclass(hint, _Part):
        return hint.from_json
    return None


def _absent(hint):
    """What a key an older document lacks reads as."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        return ()
    if origin is dict:
        return {}
    if isinstance(hint, type) and issubclass(hint, _Part):
        return hint.from_json({})
    return None


@cache
def _plan(cls) -> tuple:
    """Per field, once per class: its name, its key in the document, how to read it, and
    what it reads as when the document lacks the key (MISSING: the field's default)."""
    hints = _hints(cls)
    return tuple((f.name, f.metadata.get("key", f.name), _reader(hints[f.name]),
                  _absent(hints[f.name]) if f.default is MISSING and f.default_factory is MISSING else MISSING)
                 for f in fields(cls))


class _Part:
    """A frozen piece of the report that writes itself as JSON and reads itself back."""

    def __post_init__(self):
        for name, shape in _shapes(type(self)):
            value = getattr(self, name)
            if shape == "number":
                value = _number(value)
            elif shape == "mapping" and value is not None:
                value = {k: _number(v) for k, v in value.items()}
            elif isinstance(value, list):
                value = tuple(value)
            object.__setattr__(self, name, value)

    def to_json(self) -> dict:
        doc = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.metadata.get("omit_if_none"):
                continue
            doc[f.metadata.get("key", f.name)] = _json(value)
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> Self:
        values = {}
        for name, key, read, absent in _plan(cls):
            if key in doc:
                raw = doc[key]
                values[name] = raw if raw is None or read is None else read(raw)
            elif absent is not MISSING:
                values[name] = absent
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class AnalysisSettings(_Part):
    alpha: float = 0.05
    correction: str = "holm"
    cuped: bool = True
    sequential_tau: float = 0.02  # the relative effect the always-valid test is tuned to
    prior_sd: float | None = field(default=None, metadata={"key": "bayesian_prior_sd"})
    minimum_detectable_effect: float = 0.02
    segment_by: str | None = None


@dataclass(frozen=True, kw_only=True)
class SequentialTest(_Part):
    """The always-valid answer (mSPRT) about a relative lift: safe to read at every look."""

    p_value: float | None
    ci_low: float | None
    ci_high: float | None
    significant: bool = False


@dataclass(frozen=True, kw_only=True)
class BayesianEstimate(_Part):
    """The posterior of the relative lift under a normal approximation."""

    chance_to_beat_control: float | None
    posterior_mean: float | None
    posterior_sd: float | None
    credible_low: float | None
    credible_high: float | None
    expected_loss: float | None


@dataclass(frozen=True, kw_only=True)
class FixedHorizonTest(_Part):
    """A treatment against its baseline, read once at the planned end: lifts (fractions)
    with their standard errors and intervals, the p-value, and the statistic."""

    absolute_lift: float | None
    absolute_se: float | None
    absolute_ci_low: float | None
    absolute_ci_high: float | None
    relative_lift: float | None
    relative_se: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    statistic: float | None
    df: float | None  # None for a z-test (infinite degrees of freedom), as for a comparison not made


@dataclass(frozen=True, kw_only=True)
class CupedComparison(FixedHorizonTest):
    """The same test on CUPED-adjusted values."""

    theta: float | None  # the slope on the metric's own pre-period value
    variance_reduction: float | None
    # What the adjustment used (docs/statistics.md, "CUPED"); absent from reports stored before.
    covariates: tuple[str, ...] | None = field(default=None, metadata=OMITTED_WHEN_NONE)
    significant: bool = False  # on the adjusted p-value once corrected
    sequential: SequentialTest
    p_value_adjusted: float | None = None


@dataclass(frozen=True, kw_only=True)
class GuardrailTest(_Part):
    """A guardrail's non-inferiority test (docs/statistics.md): may the treatment be worse
    than its baseline by at most `margin` (relative)? `bound` is the one-sided (1 − α)
    confidence bound of the relative lift on the harmful side (the upper bound when lower
    is better), `p_value` the one-sided test of "worse by the margin or more".

    verdict: "regressed" when the interval shown excludes 0 on the harmful side (the
    comparison is significant and worse); else "within_margin" when the bound is inside
    the margin; else "inconclusive"."""

    margin: float
    bound: float | None
    p_value: float | None
    verdict: str = "inconclusive"


@dataclass(frozen=True, kw_only=True)
class MinimumDataCheck(_Part):
    """The minimum-data rule of a metric (analysis/stats/minimum_data.py) applied to one
    comparison: below it the comparison has no interval, p-value or verdict."""

    users_per_variant: int
    events_per_variant: int
    more_users: int | None  # users the experiment needs before a verdict; None: not estimable yet
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class Comparison(FixedHorizonTest):
    """One treatment against the control on one metric, every way the report reads it."""

    variant: str
    baseline: str
    sequential: SequentialTest
    chance_to_beat_control: float | None
    bayesian: BayesianEstimate
    cuped: CupedComparison | None = field(default=None, metadata=OMITTED_WHEN_NONE)
    improved: bool | None = None  # moved the way the metric's direction calls better
    p_value_adjusted: float | None = None
    significant: bool = False  # on the adjusted p-value
    guardrail: GuardrailTest | None = field(default=None, metadata=OMITTED_WHEN_NONE)  # guardrails with a margin
    # False: no verdict yet (too few users or events, or nothing to test); `minimum_data` says why.
    enough_data: bool = True
    minimum_data: MinimumDataCheck | None = field(default=None, metadata=OMITTED_WHEN_NONE)

    def to_json(self) -> dict:
        doc = super().to_json()
        # The variant and its baseline lead, as in every stored report.
        return {"variant": doc.pop("variant"), "baseline": doc.pop("baseline"), **doc}


@dataclass(frozen=True, kw_only=True)
class VariantStatistics(_Part):
    """One variant's value of one metric."""

    variant: str
    is_control: bool = False
    users: int
    mean: float | None  # the metric's value, whatever its kind
    std_error: float | None
    numerator_sum: float | None
    denominator_sum: float | None  # kinds with a denominator only
    cuped_mean: float | None = None


@dataclass(frozen=True, kw_only=True)
class MetricCap(_Part):
    """How a metric's per-user values were winsorized: each user's count at most `value`,
    the `percentile` of every user's count above 0 (all variants pooled). For a ratio,
    `value` caps the numerator and `denominator_value` the denominator; None where that
    count is 0/1 (never capped) or no user had any."""

    percentile: float
    value: float | None
    denominator_value: float | None = field(default=None, metadata=OMITTED_WHEN_NONE)


@dataclass(frozen=True, kw_only=True)
class MetricResult(_Part):
    """One metric: every variant's value and every treatment's comparison with the control."""

    metric: str  # the metric's key
    name: str
    kind: str
    direction: str  # "higher" or "lower" is better
    role: str  # "primary", "guardrail" or "secondary"
    cuped_available: bool = False
    variants: tuple[VariantStatistics, ...]
    comparisons: tuple[Comparison, ...]
    cap: MetricCap | None = field(default=None, metadata=OMITTED_WHEN_NONE)  # None: not capped

    def __post_init__(self):
        super().__post_init__()
        if not self.cuped_available and any(v.cuped_mean is not None for v in self.variants):
            raise ValueError(f"{self.metric}: CUPED means without CUPED")

    def to_json(self) -> dict:
        doc = super().to_json()
        if not self.cuped_available:
            for variant in doc["variants"]:
                del variant["cuped_mean"]
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> Self:
        # Reports from before cuped_available was stored said it with their CUPED means.
        available = any("cuped_mean" in v for v in doc.get("variants") or ())
        return super().from_json({"cuped_available": available, **doc})


@dataclass(frozen=True, kw_only=True)
class SampleRatioCheck(_Part):
    """The users each variant got against the split asked for (chi-square)."""

    p_value: float | None
    flagged: bool = False
    statistic: float | None
    observed: dict[str, int]
    expected: dict[str, float]


@dataclass(frozen=True, kw_only=True)
class PowerPlan(_Part):
    """The primary metric's sample size for the minimum detectable effect, from the control's data,
    for the experiment's split and number of treatments, with the report's correction."""

    metric: str
    baseline_mean: float | None
    unit_variance: float | None
    relative_mde: float | None
    users_per_variant: int | None
    users_per_variant_now: int | None
    users_per_variant_per_day: float | None
    days_needed: float | None
    days_remaining: float | None
    mde_now: float | None
    power_now: float | None
    # The planned split and the correction the plan includes (absent from reports stored
    # before them: from_json reads them as None or empty).
    weights: dict[str, float] = field(default_factory=dict)  # variant key → share of users
    comparisons: int | None = None
    correction: str | None = None
    per_comparison_alpha: float | None = None
    users_needed: int | None = None  # all arms together
    users_needed_smallest_arm: int | None = None
    users_per_day: float | None = None  # all arms together


@dataclass(frozen=True, kw_only=True)
class DailyValue(_Part):
    variant: str
    users: int
    mean: float | None


@dataclass(frozen=True, kw_only=True)
class DailyLift(_Part):
    """A treatment's cumulative relative lift at the end of a day, both ways of reading it."""

    variant: str
    relative_lift: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    sequential_ci_low: float | None
    sequential_ci_high: float | None
    sequential_p_value: float | None


@dataclass(frozen=True, kw_only=True)
class SeriesDay(_Part):
    day: date = field(metadata={"key": "date"})
    variants: tuple[DailyValue, ...]
    comparisons: tuple[DailyLift, ...]


@dataclass(frozen=True, kw_only=True)
class DailySeries(_Part):
    """The primary metric at the end of each day since the first exposure."""

    metric: str
    days: tuple[SeriesDay, ...]
    source: str | None = field(default=None, metadata=OMITTED_WHEN_NONE)  # "backfill" or "incremental"

    def before(self, day: date) -> tuple[SeriesDay, ...]:
        return tuple(d for d in self.days if d.day < day)


@dataclass(frozen=True, kw_only=True)
class SegmentResult(_Part):
    segment: str
    users: int
    srm: SampleRatioCheck
    metrics: tuple[MetricResult, ...]


@dataclass(frozen=True, kw_only=True)
class ReportPhase(_Part):
    """The phase a report covers: users first exposed from started_at until ended_at
    (None: still open), their events up to the phase's end (docs/assignment.md)."""

    number: int
    started_at: str  # ISO 8601, as stored
    ended_at: str | None


@dataclass(frozen=True, kw_only=True)
class VariantServing(_Part):
    """How a variant's config served the closeups it shaped, over the experiment's life."""

    variant: str
    requests: int
    fallbacks: int
    fallback_rate: float | None


@dataclass(frozen=True, kw_only=True)
class DataHealth(_Part):
    """What the analysis read, beside the statistics: how fresh the stored events were,
    and how many of the users counted were also reported in another variant."""

    events_stored_until: str | None  # ISO 8601: when the last stored batch of events was written
    batches_waiting: int = 0  # accepted but not yet stored when the analysis ran
    oldest_waiting_since: str | None = None
    users_in_other_variants: int = 0  # exposed users also reported in another variant (counted in their first)


@dataclass(frozen=True, kw_only=True)
class InterleavingDay(_Part):
    """The preference test at the end of a day, on every credited engagement until then."""

    day: date = field(metadata={"key": "date"})
    users: int
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None


@dataclass(frozen=True, kw_only=True)
class InterleavingResult(_Part):
    """Which ranker's items the users of an interleaving experiment engaged with
    (docs/interleaving.md). `users` have a credited engagement; each prefers the team
    with more of their credited engagements (`wins`), or neither (`ties`).
    delta = (wins of the treatment − wins of the control) / users, with a one-sample
    t-test of the per-user scores; `significant` is read off the interval shown."""

    control: str
    treatment: str
    users: int
    wins: dict[str, int]
    ties: int
    delta: float | None
    std_error: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    significant: bool = False
    winner: str | None = None
    enough_data: bool = True
    more_users: int | None = None  # users with a credited engagement still needed before a verdict
    uncredited: int = 0  # engagements of the experiment's users that no team placed
    series: tuple[InterleavingDay, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Report(_Part):
    experiment: str
    design: str = "ab"  # "interleaving": `interleaving` holds the verdict
    phase: ReportPhase | None = field(default=None, metadata=OMITTED_WHEN_NONE)  # None: no phases (never started)
    settings: AnalysisSettings
    srm: SampleRatioCheck
    users: int
    days_running: float
    metrics: tuple[MetricResult, ...]
    power: PowerPlan | None
    series: DailySeries | None = field(default=None, metadata=OMITTED_WHEN_NONE)
    segments: tuple[SegmentResult, ...] | None = field(default=None, metadata=OMITTED_WHEN_NONE)
    serving: tuple[VariantServing, ...] | None = field(default=None, metadata=OMITTED_WHEN_NONE)
    health: DataHealth | None = field(default=None, metadata=OMITTED_WHEN_NONE)
    interleaving: InterleavingResult | None = field(default=None, metadata=OMITTED_WHEN_NONE)

    @property
    def primary(self) -> MetricResult | None:
        return next((m for m in self.metrics if m.role == "primary"), None)
