"""From per-variant moments to the report a PM reads (analysis/report.py): pure, no
Django import.

Families for the multiple-comparison correction: the primary metric across its
treatment variants; the guardrails together; the other (secondary) metrics together;
and, in a segmented report, each of those across all segments.
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date

from analysis.metric_kinds import registry as metric_kinds
from analysis.metric_kinds.base import MetricKind
from analysis.report import (
    AnalysisSettings,
    BayesianEstimate,
    Comparison,
    CupedComparison,
    DailyLift,
    DailySeries,
    DailyValue,
    GuardrailTest,
    InterleavingDay,
    InterleavingResult,
    MetricCap,
    MetricResult,
    MinimumDataCheck,
    PowerPlan,
    Report,
    ReportPhase,
    SampleRatioCheck,
    SegmentResult,
    SequentialTest,
    SeriesDay,
    VariantStatistics,
)
from analysis.stats import multiple_testing
from analysis.stats.bayesian import chance_to_beat
from analysis.stats.cuped import Covariate, cuped, cuped_multi
from analysis.stats.frequentist import compare
from analysis.stats.interleaving import PreferenceCounts, PreferenceTest, preference_test
from analysis.stats.interleaving import winner as preference_winner
from analysis.stats.minimum_data import Arm, MinimumData, Shortfall, shortfall
from analysis.stats.moments import MetricValue, Moments
from analysis.stats.noninferiority import non_inferiority
from analysis.stats.power import plan as power_plan
from analysis.stats.sequential import SequentialResult, confidence_sequence, running
from analysis.stats.srm import sample_ratio_mismatch

ROLES = ("primary", "guardrail", "secondary")


@dataclass(frozen=True)
class MetricInfo:
    key: str
    name: str
    kind: str
    direction: str  # "higher" or "lower"
    role: str  # "primary", "guardrail" or "secondary"
    post: tuple[int, ...]
    pre: tuple[int, ...] = ()
    cap: MetricCap | None = None  # how its per-user values were winsorized; None: not capped
    guardrail_margin: float | None = None  # relative; as a guardrail, tested for non-inferiority
    minimum: MinimumData | None = None  # no verdict below it (analysis/stats/minimum_data.py); None: no rule
    events_word: str = "events"  # what its numerator counts, for "12 of 150 clicks"
    # CUPED++'s covariates beside the metric's own pre-period value: (name, kind, indices);
    # none: single-covariate CUPED on `pre`.
    covariates: tuple[tuple[str, str, tuple[int, ...]], ...] = ()


@dataclass(frozen=True)
class VariantInfo:
    id: int
    key: str
    weight: float
    is_control: bool


@dataclass(frozen=True)
class _Cuped:
    """One variant's CUPED-adjusted value, with what the comparison reports of it."""

    value: MetricValue
    variance_reduction: float
    theta: float  # the slope on the metric's own pre-period value (0 when it was dropped)
    covariates: tuple[str, ...]


def _empty(k: int) -> Moments:
    return Moments(0, (0.0,) * k, tuple((0.0,) * k for _ in range(k)))


def metric_result(metric: MetricInfo, variants: list[VariantInfo], moments: dict[int, Moments],
                  settings: AnalysisSettings, interval_levels: Mapping[str, tuple[float, float]] | None = None,
                  ) -> MetricResult:
    """One metric: per-variant values and every treatment's comparisons with the control
    (p-values not yet corrected: see apply_correction). `interval_levels` gives, per
    treatment key, the level of its shown intervals (plain, CUPED); by default alpha."""
    k = len(next(iter(moments.values())).sums) if moments else max((*metric.post, *metric.pre), default=0) + 1
    by_variant = {v.id: moments.get(v.id) or _empty(k) for v in variants}
    kind = metric_kinds.get(metric.kind)
    values = {vid: kind.value(m.select(metric.post)) for vid, m in by_variant.items()}
    control = next(v for v in variants if v.is_control)
    adjusted = None
    if settings.cuped and metric.pre and all(by_variant[v.id].n > 1 for v in variants):
        adjusted = _adjusted(metric, kind, variants, by_variant)
    higher = metric.direction != "lower"
    margin = metric.guardrail_margin if metric.role == "guardrail" else None
    total_weight = sum(max(v.weight, 0.0) for v in variants) or 1.0

    def arm(v: VariantInfo) -> Arm:
        m = by_variant[v.id]
        return Arm(v.key, m.n, m.sums[metric.post[0]] if m.n else 0.0, max(v.weight, 0.0) / total_weight)

    def data_check(v: VariantInfo) -> tuple[MinimumDataCheck | None, Shortfall]:
        # Without a rule, still the test's own minimum: two users per arm for a variance.
        rule = metric.minimum or MinimumData(users_per_variant=2, events_per_variant=0)
        short = shortfall(rule, [arm(control), arm(v)], metric.events_word)
        if short.met and not all(math.isfinite(values[x.id].value) for x in (control, v)):
            short = replace(short, met=False, more_users=None, reason=UNDEFINED_VALUE)
        block = None if metric.minimum is None and short.met else MinimumDataCheck(
            users_per_variant=rule.users_per_variant, events_per_variant=rule.events_per_variant,
            more_users=short.more_users, reason=short.reason)
        return block, short

    return MetricResult(
        metric=metric.key, name=metric.name, kind=metric.kind, direction=metric.direction, role=metric.role,
        cuped_available=adjusted is not None,
        variants=tuple(_variant_statistics(metric, kind, v, by_variant[v.id], values[v.id], adjusted)
                       for v in variants),
        comparisons=tuple(_with_minimum_data(
            _comparison(v, control, values, adjusted, higher, settings,
                        (interval_levels or {}).get(v.key, (settings.alpha, settings.alpha)), margin),
            data_check(v)) for v in variants if not v.is_control),
        cap=metric.cap,
    )


def _adjusted(metric: MetricInfo, kind: MetricKind, variants: list[VariantInfo],
              by_variant: dict[int, Moments]) -> dict[int, _Cuped]:
    """CUPED++ on the metric's own pre-period value and its other covariates when it has
    them, else single-covariate CUPED (docs/statistics.md, "CUPED")."""
    moments = [by_variant[v.id] for v in variants]
    if not metric.covariates:
        one = cuped(kind, moments, metric.post, metric.pre)
        return {v.id: _Cuped(one.adjusted[i], one.variance_reduction(i), one.theta, (metric.key,))
                for i, v in enumerate(variants)}
    covariates = [Covariate(metric.key, kind, metric.pre)]
    covariates += [Covariate(name, metric_kinds.get(k), idx) for name, k, idx in metric.covariates]
    many = cuped_multi(kind, moments, metric.post, covariates)
    own = many.theta[0] if many.covariates[:1] == (metric.key,) else 0.0
    return {v.id: _Cuped(many.adjusted[i], many.variance_reduction(i), own, many.covariates)
            for i, v in enumerate(variants)}


def _variant_statistics(metric: MetricInfo, kind: MetricKind, variant: VariantInfo, m: Moments, value: MetricValue,
                        adjusted: dict[int, _Cuped] | None) -> VariantStatistics:
    return VariantStatistics(
        variant=variant.key, is_control=variant.is_control, users=m.n, mean=value.value,
        std_error=math.sqrt(value.variance) if value.n else None,
        numerator_sum=m.sums[metric.post[0]] if m.n else 0.0,
        denominator_sum=m.sums[metric.post[1]] if kind.has_denominator and m.n else None,
        cuped_mean=adjusted[variant.id].value.value if adjusted else None,
    )


def _sequential(result: SequentialResult, alpha: float) -> SequentialTest:
    # The running p-value is below alpha exactly when the running interval excludes 0.
    return SequentialTest(**result.as_dict(), significant=_below(result.p_value, alpha))


def _stored(p, low, high) -> SequentialResult:
    nan = float("nan")
    return SequentialResult(nan if p is None else p, nan if low is None else low, nan if high is None else high)


def _looks_so_far(series: DailySeries | None, variant: str) -> SequentialResult | None:
    """The running sequential values of the series' last day for a treatment."""
    for day in reversed(series.days if series else ()):
        for c in day.comparisons:
            if c.variant == variant:
                return _stored(c.sequential_p_value, c.sequential_ci_low, c.sequential_ci_high)
    return None


def with_past_looks(result: MetricResult, series: DailySeries | None, alpha: float) -> MetricResult:
    """The primary metric's sequential answers combined with the daily series' earlier
    looks (running minimum p, intersection of intervals): what was significant at a
    look stays so. CUPED's sequential answer has no series and stays this look's."""
    if series is None or series.metric != result.metric:
        return result

    def combined(c: Comparison) -> Comparison:
        if not c.enough_data:
            return c
        past = _looks_so_far(series, c.variant)
        now = _stored(c.sequential.p_value, c.sequential.ci_low, c.sequential.ci_high)
        return replace(c, sequential=_sequential(running(past, now), alpha))

    return replace(result, comparisons=tuple(combined(c) for c in result.comparisons))


def _comparison(variant: VariantInfo, control: VariantInfo, values: dict[int, MetricValue],
                adjusted: dict[int, _Cuped] | None, higher: bool, settings: AnalysisSettings,
                levels: tuple[float, float], margin: float | None = None) -> Comparison:
    alpha, tau = settings.alpha, settings.sequential_tau
    c = compare(values[variant.id], values[control.id], levels[0])
    bayes = chance_to_beat(c.relative_lift, c.relative_se, higher, prior_sd=settings.prior_sd)
    with_cuped = None
    if adjusted:
        mine = adjusted[variant.id]
        ca = compare(mine.value, adjusted[control.id].value, levels[1])
        with_cuped = CupedComparison(
            **ca.as_dict(), theta=mine.theta, variance_reduction=mine.variance_reduction, covariates=mine.covariates,
            significant=_below(ca.p_value, alpha),
            sequential=_sequential(confidence_sequence(ca.relative_lift, ca.relative_se**2, tau, alpha), alpha),
        )
    return Comparison(
        variant=variant.key, baseline=control.key, **c.as_dict(),
        sequential=_sequential(confidence_sequence(c.relative_lift, c.relative_se**2, tau, alpha), alpha),
        chance_to_beat_control=bayes.chance_to_beat_control, bayesian=BayesianEstimate(**bayes.as_dict()),
        cuped=with_cuped, improved=_direction_ok(c.relative_lift, higher),
        guardrail=_guardrail(values[variant.id], values[control.id], margin, higher, alpha),
    )


NOTHING_TO_TEST = "every user has the same value in both arms: there is no variation to test"
UNDEFINED_VALUE = "the metric is undefined in an arm (no denominator events yet)"


def _with_minimum_data(c: Comparison, check: tuple[MinimumDataCheck | None, Shortfall]) -> Comparison:
    """The comparison as the minimum-data rule lets it be read. Short of the rule, or with
    nothing to test (no variance), it keeps its observed lift and loses every inferential
    number (interval, p-value, sequential, Bayesian, CUPED, guardrail bound), so it takes
    no part in the correction and no verdict can contradict an interval."""
    block, short = check
    testable = c.p_value is not None
    if short.met and testable:
        return replace(c, minimum_data=block)
    if short.met:
        block = replace(block, more_users=None, reason=NOTHING_TO_TEST) if block else MinimumDataCheck(
            users_per_variant=2, events_per_variant=0, more_users=None, reason=NOTHING_TO_TEST)
    return replace(
        c, enough_data=False, minimum_data=block,
        absolute_ci_low=None, absolute_ci_high=None, ci_low=None, ci_high=None, p_value=None, statistic=None,
        sequential=SequentialTest(p_value=None, ci_low=None, ci_high=None),
        chance_to_beat_control=None,
        bayesian=BayesianEstimate(chance_to_beat_control=None, posterior_mean=None, posterior_sd=None,
                                  credible_low=None, credible_high=None, expected_loss=None),
        cuped=None,
        guardrail=(replace(c.guardrail, bound=None, p_value=None, verdict="inconclusive")
                   if c.guardrail is not None else None),
    )


def _guardrail(treatment: MetricValue, control: MetricValue, margin: float | None, higher: bool,
               alpha: float) -> GuardrailTest | None:
    """The non-inferiority test, at alpha uncorrected: shipping needs every guardrail
    within its margin, an intersection-union test, which needs no correction (Berger
    1982). "regressed" is decided once the two-sided verdicts are corrected."""
    if margin is None:
        return None
    ni = non_inferiority(treatment, control, margin, higher, alpha)
    return GuardrailTest(margin=margin, bound=ni.bound, p_value=ni.p_value,
                         verdict="within_margin" if ni.within_margin else "inconclusive")


def guardrail_verdicts(results: list[MetricResult]) -> list[MetricResult]:
    """A guardrail whose (corrected) interval shown excludes 0 on the harmful side has
    regressed, whatever its margin: the verdict never contradicts `significant`."""
    def judged(c: Comparison) -> Comparison:
        if c.guardrail is None or not (c.significant and c.improved is False):
            return c
        return replace(c, guardrail=replace(c.guardrail, verdict="regressed"))

    return [replace(r, comparisons=tuple(judged(c) for c in r.comparisons)) if r.role == "guardrail" else r
            for r in results]


def corrected_results(build: Callable[[list[dict] | None], list[MetricResult]],
                      settings: AnalysisSettings) -> list[MetricResult]:
    """Results with corrected p-values, and every shown interval at the level its corrected
    verdict used, so that `significant` is exactly "the interval shown excludes 0".

    After the correction a comparison is significant when p_adjusted < alpha, that is when
    p < alpha_i = alpha * p / p_adjusted: its own, stricter level (for Bonferroni alpha/m;
    for Holm the step-down level it was tested at). `build(levels)` makes the results, with
    each result's intervals at `levels[i]` ({treatment key: (plain, CUPED)}) when given."""
    first = apply_correction(build(None), settings)
    levels = [{c.variant: (_level(c.p_value, c.p_value_adjusted, settings.alpha),
                           _level(c.cuped.p_value, c.cuped.p_value_adjusted, settings.alpha) if c.cuped
                           else settings.alpha)
               for c in r.comparisons} for r in first]
    return guardrail_verdicts(apply_correction(build(levels), settings))


def _level(p, p_adjusted, alpha: float) -> float:
    usable = p is not None and p_adjusted is not None and math.isfinite(p) and math.isfinite(p_adjusted)
    return alpha * p / p_adjusted if usable and p_adjusted > 0 else alpha


def _below(p, alpha) -> bool:
    return p is not None and math.isfinite(p) and p < alpha


def _direction_ok(lift, higher) -> bool | None:
    if lift is None or not math.isfinite(lift) or lift == 0:
        return None
    return (lift > 0) == higher


def apply_correction(results: list[MetricResult], settings: AnalysisSettings) -> list[MetricResult]:
    """The results with p_value_adjusted and significant (on the adjusted p-value) on
    every comparison, one family per metric role; CUPED's p-values get the same treatment."""
    plain: dict[tuple[int, int], float | None] = {}
    with_cuped: dict[tuple[int, int], float | None] = {}
    for role in ROLES:
        family = {(i, j): c for i, r in enumerate(results) if r.role == role for j, c in enumerate(r.comparisons)}
        plain.update(zip(family, multiple_testing.adjust([c.p_value for c in family.values()],
                                                         settings.correction), strict=True))
        cuped_family = {at: c.cuped for at, c in family.items() if c.cuped is not None}
        with_cuped.update(zip(cuped_family, multiple_testing.adjust([c.p_value for c in cuped_family.values()],
                                                                    settings.correction), strict=True))

    def corrected(at: tuple[int, int], c: Comparison) -> Comparison:
        if at not in plain:
            return c
        cup = c.cuped
        if cup is not None:
            cup = replace(cup, p_value_adjusted=with_cuped[at], significant=_below(with_cuped[at], settings.alpha))
        return replace(c, cuped=cup, p_value_adjusted=plain[at], significant=_below(plain[at], settings.alpha))

    return [replace(r, comparisons=tuple(corrected((i, j), c) for j, c in enumerate(r.comparisons)))
            for i, r in enumerate(results)]


def srm_result(variants: list[VariantInfo], users: dict[int, int]) -> SampleRatioCheck:
    result = sample_ratio_mismatch({v.key: users.get(v.id, 0) for v in variants},
                                   {v.key: v.weight for v in variants})
    return SampleRatioCheck(**result.as_dict())


def build_report(experiment_key: str, variants: list[VariantInfo], metrics: list[MetricInfo],
                 moments: dict[int, Moments], settings: AnalysisSettings, days_running: float,
                 series: DailySeries | None = None,
                 segments: dict[str, dict[int, Moments]] | None = None, phase: ReportPhase | None = None) -> Report:
    """The report; `variants` carry the weights of the phase analysed, which the SRM check expects."""
    users = {vid: m.n for vid, m in moments.items()}
    return Report(
        experiment=experiment_key, phase=phase, settings=settings, srm=srm_result(variants, users),
        users=sum(users.values()),
        days_running=days_running,
        metrics=tuple(with_past_looks(r, series, settings.alpha) for r in corrected_results(
            lambda levels: [metric_result(m, variants, moments, settings, levels and levels[i])
                            for i, m in enumerate(metrics)], settings)),
        power=power_block(metrics, variants, moments, settings, days_running), series=series,
        segments=segment_blocks(variants, metrics, segments, settings) if segments is not None else None,
    )


def power_block(metrics, variants, moments, settings, days_running) -> PowerPlan | None:
    """The plan at the variants' weights (control first, treatments with no share left
    out), every treatment compared with the control under settings.correction."""
    primary = next((m for m in metrics if m.role == "primary"), None)
    control = next(v for v in variants if v.is_control)
    m = moments.get(control.id)
    if primary is None or m is None or m.n < 2:
        return None
    value = metric_kinds.get(primary.kind).value(m.select(primary.post))
    arms = [control, *(v for v in variants if not v.is_control and v.weight > 0)]
    planned = power_plan(settings.minimum_detectable_effect, value.value, value.unit_variance, m.n,
                         days_running, settings.alpha, weights=[v.weight for v in arms],
                         arms_now=[moments[v.id].n if v.id in moments else 0 for v in arms],
                         correction=settings.correction)
    total = sum(v.weight for v in arms)
    return PowerPlan(metric=primary.key, baseline_mean=value.value, unit_variance=value.unit_variance,
                     **{**planned.as_dict(), "weights": {v.key: v.weight / total for v in arms} if total > 0 else {}})


def segment_blocks(variants, metrics, segments: dict[str, dict[int, Moments]],
                   settings: AnalysisSettings) -> tuple[SegmentResult, ...]:
    """Per segment value, the primary and guardrail metrics; corrected across segments."""
    shown = [m for m in metrics if m.role in ("primary", "guardrail")]
    ordered = sorted(segments.items(), key=lambda kv: str(kv[0]))
    cells = [(m, moments) for _, moments in ordered for m in shown]
    # One family per metric role across every segment: looking at more segments costs.
    corrected = iter(corrected_results(
        lambda levels: [metric_result(m, variants, moments, settings, levels and levels[i])
                        for i, (m, moments) in enumerate(cells)], settings))
    return tuple(
        SegmentResult(segment=value, users=sum(m.n for m in moments.values()),
                      srm=srm_result(variants, {vid: m.n for vid, m in moments.items()}),
                      metrics=tuple(next(corrected) for _ in shown))
        for value, moments in ordered
    )


def daily_series(metric: MetricInfo, variants: list[VariantInfo], days: list[date],
                 by_variant: dict[int, list[Moments]], settings: AnalysisSettings,
                 source: str | None = None, previous: DailySeries | None = None) -> DailySeries:
    """The primary metric at the end of each day: values, and each treatment's lift
    with its fixed-horizon CI and its always-valid confidence sequence, the latter as
    running values (minimum p-value, intersection of intervals) from the first day, or
    continuing `previous` (the days before, carried from the last report)."""
    control = next(v for v in variants if v.is_control)
    k = len(metric.post)
    kind = metric_kinds.get(metric.kind)
    out_days = []
    so_far = {v.key: _looks_so_far(previous, v.key) for v in variants}
    for i, day in enumerate(days):
        moments = {v.id: (by_variant.get(v.id) or [_empty(k)] * len(days))[i] for v in variants}
        values = {vid: kind.value(m) for vid, m in moments.items()}
        lifts = []
        for v in variants:
            if v.is_control:
                continue
            c = compare(values[v.id], values[control.id], settings.alpha)
            seq = so_far[v.key] = running(so_far[v.key], confidence_sequence(
                c.relative_lift, c.relative_se**2, settings.sequential_tau, settings.alpha))
            lifts.append(DailyLift(variant=v.key, relative_lift=c.relative_lift, ci_low=c.ci_low, ci_high=c.ci_high,
                                   p_value=c.p_value, sequential_ci_low=seq.ci_low,
                                   sequential_ci_high=seq.ci_high, sequential_p_value=seq.p_value))
        out_days.append(SeriesDay(
            day=day, comparisons=tuple(lifts),
            variants=tuple(DailyValue(variant=v.key, users=moments[v.id].n, mean=values[v.id].value)
                           for v in variants)))
    return DailySeries(metric=metric.key, days=tuple(out_days), source=source)


def interleaving_result(control: VariantInfo, treatment: VariantInfo, days: list[date],
                        counts: list[tuple[int, int, int, int]], alpha: float) -> InterleavingResult:
    """The interleaving block from the per-day cumulative counts (wins_control,
    wins_treatment, ties, uncredited); the last day is the verdict."""
    def test(row) -> PreferenceTest:
        return preference_test(PreferenceCounts(*row), alpha)

    final = counts[-1] if counts else (0, 0, 0, 0)
    now = test(final)
    series = tuple(InterleavingDay(day=day, users=t.users, delta=t.delta, ci_low=t.ci_low, ci_high=t.ci_high,
                                   p_value=t.p_value)
                   for day, t in ((day, test(row)) for day, row in zip(days, counts, strict=True)))
    return InterleavingResult(
        control=control.key, treatment=treatment.key, users=now.users,
        wins={control.key: final[0], treatment.key: final[1]}, ties=final[2],
        delta=now.delta, std_error=now.std_error, ci_low=now.ci_low, ci_high=now.ci_high, p_value=now.p_value,
        significant=now.significant, winner=preference_winner(now, control.key, treatment.key),
        enough_data=now.enough_data, more_users=now.more_users, uncredited=final[3], series=series)
