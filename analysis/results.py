"""From per-variant moments to the report a PM reads: pure, no Django import.

The report is a JSON-ready dict (see docs/statistics.md for every field). Families
for the multiple-comparison correction: the primary metric across its treatment
variants; the guardrails together; the other (secondary) metrics together; and, in a
segmented report, each of those across all segments.
"""

import math
from dataclasses import dataclass
from datetime import date

from analysis.metric_kinds import registry as metric_kinds
from analysis.stats import multiple_testing
from analysis.stats.bayesian import chance_to_beat
from analysis.stats.cuped import cuped
from analysis.stats.frequentist import compare
from analysis.stats.moments import Moments
from analysis.stats.power import plan as power_plan
from analysis.stats.sequential import msprt
from analysis.stats.srm import sample_ratio_mismatch


@dataclass(frozen=True)
class MetricInfo:
    key: str
    name: str
    kind: str
    direction: str  # "higher" or "lower"
    role: str  # "primary", "guardrail" or "secondary"
    post: tuple[int, ...]
    pre: tuple[int, ...] = ()


@dataclass(frozen=True)
class VariantInfo:
    id: int
    key: str
    weight: float
    is_control: bool


@dataclass(frozen=True)
class Settings:
    alpha: float = 0.05
    correction: str = "holm"
    cuped: bool = True
    sequential_tau: float = 0.02  # the relative effect the always-valid test is tuned to
    prior_sd: float | None = None
    minimum_detectable_effect: float = 0.02
    segment_by: str | None = None

    def as_dict(self) -> dict:
        return {"alpha": self.alpha, "correction": self.correction, "cuped": self.cuped,
                "sequential_tau": self.sequential_tau, "bayesian_prior_sd": self.prior_sd,
                "minimum_detectable_effect": self.minimum_detectable_effect, "segment_by": self.segment_by}


def clean(obj):
    """JSON-ready: nan and infinities become None, numpy numbers plain ones."""
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _empty(k: int) -> Moments:
    return Moments(0, (0.0,) * k, tuple((0.0,) * k for _ in range(k)))


def metric_result(metric: MetricInfo, variants: list[VariantInfo], moments: dict[int, Moments],
                  settings: Settings) -> dict:
    """One metric: per-variant values and every treatment's comparisons with the control."""
    k = len(next(iter(moments.values())).sums) if moments else max((*metric.post, *metric.pre), default=0) + 1
    by_variant = {v.id: moments.get(v.id) or _empty(k) for v in variants}
    kind = metric_kinds.get(metric.kind)
    values = {vid: kind.value(m.select(metric.post)) for vid, m in by_variant.items()}
    control = next(v for v in variants if v.is_control)
    adjusted = None
    if settings.cuped and metric.pre and all(by_variant[v.id].n > 1 for v in variants):
        result = cuped(kind, [by_variant[v.id] for v in variants], metric.post, metric.pre)
        adjusted = {v.id: (result.adjusted[i], result.variance_reduction(i), result.theta)
                    for i, v in enumerate(variants)}
    higher = metric.direction != "lower"
    rows = []
    for v in variants:
        m, val = by_variant[v.id], values[v.id]
        row = {"variant": v.key, "is_control": v.is_control, "users": m.n, "mean": val.value,
               "std_error": math.sqrt(val.variance) if val.n else None,
               "numerator_sum": m.sums[metric.post[0]] if m.n else 0.0,
               "denominator_sum": m.sums[metric.post[1]] if kind.has_denominator and m.n else None}
        if adjusted:
            row["cuped_mean"] = adjusted[v.id][0].value
        rows.append(row)
    comparisons = []
    for v in variants:
        if v.is_control:
            continue
        c = compare(values[v.id], values[control.id], settings.alpha)
        item = {"variant": v.key, "baseline": control.key, **c.as_dict()}
        seq = msprt(c.relative_lift, c.relative_se**2, settings.sequential_tau, settings.alpha)
        item["sequential"] = {**seq.as_dict(), "significant": _below(seq.p_value, settings.alpha)}
        bayes = chance_to_beat(c.relative_lift, c.relative_se, higher, prior_sd=settings.prior_sd)
        item["chance_to_beat_control"] = bayes.chance_to_beat_control
        item["bayesian"] = bayes.as_dict()
        if adjusted:
            ca = compare(adjusted[v.id][0], adjusted[control.id][0], settings.alpha)
            cseq = msprt(ca.relative_lift, ca.relative_se**2, settings.sequential_tau, settings.alpha)
            item["cuped"] = {**ca.as_dict(), "theta": adjusted[v.id][2],
                             "variance_reduction": adjusted[v.id][1],
                             "significant": _below(ca.p_value, settings.alpha),
                             "sequential": {**cseq.as_dict(), "significant": _below(cseq.p_value, settings.alpha)}}
        item["improved"] = _direction_ok(c.relative_lift, higher)
        comparisons.append(item)
    return {"metric": metric.key, "name": metric.name, "kind": metric.kind, "direction": metric.direction,
            "role": metric.role, "cuped_available": adjusted is not None, "variants": rows,
            "comparisons": comparisons}


def _below(p, alpha) -> bool:
    return p is not None and math.isfinite(p) and p < alpha


def _direction_ok(lift, higher) -> bool | None:
    if lift is None or not math.isfinite(lift) or lift == 0:
        return None
    return (lift > 0) == higher


def apply_correction(metric_blocks: list[dict], settings: Settings) -> None:
    """Adds p_value_adjusted and significant (on the adjusted p-value) to every
    comparison, one family per metric role; CUPED's p-values get the same treatment."""
    for role in ("primary", "guardrail", "secondary"):
        family = [c for b in metric_blocks if b["role"] == role for c in b["comparisons"]]
        for source, holder in (("p_value", lambda c: c), ("p_value", lambda c: c.get("cuped"))):
            items = [holder(c) for c in family if holder(c) is not None]
            adjusted = multiple_testing.adjust([i.get(source) for i in items], settings.correction)
            for item, p in zip(items, adjusted, strict=True):
                item["p_value_adjusted"] = p
                item["significant"] = _below(p, settings.alpha)


def srm_result(variants: list[VariantInfo], users: dict[int, int]) -> dict:
    result = sample_ratio_mismatch({v.key: users.get(v.id, 0) for v in variants},
                                   {v.key: v.weight for v in variants})
    return result.as_dict()


def build_report(experiment_key: str, variants: list[VariantInfo], metrics: list[MetricInfo],
                 moments: dict[int, Moments], settings: Settings, days_running: float,
                 series: dict | None = None, segments: dict[str, dict[int, Moments]] | None = None) -> dict:
    users = {vid: m.n for vid, m in moments.items()}
    blocks = [metric_result(m, variants, moments, settings) for m in metrics]
    apply_correction(blocks, settings)
    report = {
        "experiment": experiment_key,
        "settings": settings.as_dict(),
        "srm": srm_result(variants, users),
        "users": sum(users.values()),
        "days_running": days_running,
        "metrics": blocks,
        "power": power_block(metrics, variants, moments, settings, days_running),
    }
    if series is not None:
        report["series"] = series
    if segments is not None:
        report["segments"] = segment_blocks(variants, metrics, segments, settings)
    return clean(report)


def power_block(metrics, variants, moments, settings, days_running) -> dict | None:
    primary = next((m for m in metrics if m.role == "primary"), None)
    control = next(v for v in variants if v.is_control)
    m = moments.get(control.id)
    if primary is None or m is None or m.n < 2:
        return None
    value = metric_kinds.get(primary.kind).value(m.select(primary.post))
    planned = power_plan(settings.minimum_detectable_effect, value.value, value.unit_variance, m.n,
                         days_running, settings.alpha)
    return {"metric": primary.key, "baseline_mean": value.value, "unit_variance": value.unit_variance,
            **planned.as_dict()}


def segment_blocks(variants, metrics, segments: dict[str, dict[int, Moments]], settings: Settings) -> list[dict]:
    """Per segment value, the primary and guardrail metrics; corrected across segments."""
    shown = [m for m in metrics if m.role in ("primary", "guardrail")]
    out = []
    for value, moments in sorted(segments.items(), key=lambda kv: str(kv[0])):
        out.append({"segment": value, "users": sum(m.n for m in moments.values()),
                    "srm": srm_result(variants, {vid: m.n for vid, m in moments.items()}),
                    "metrics": [metric_result(m, variants, moments, settings) for m in shown]})
    # One family per metric role across every segment: looking at more segments costs.
    apply_correction([b for s in out for b in s["metrics"]], settings)
    return out


def series_block(metric: MetricInfo, variants: list[VariantInfo], days: list[date],
                 by_variant: dict[int, list[Moments]], settings: Settings) -> dict:
    """The primary metric at the end of each day: values, and each treatment's lift
    with its fixed-horizon CI and its always-valid confidence sequence."""
    control = next(v for v in variants if v.is_control)
    k = len(metric.post)
    kind = metric_kinds.get(metric.kind)
    out_days = []
    for i, day in enumerate(days):
        moments = {v.id: (by_variant.get(v.id) or [_empty(k)] * len(days))[i] for v in variants}
        values = {vid: kind.value(m) for vid, m in moments.items()}
        comparisons = []
        for v in variants:
            if v.is_control:
                continue
            c = compare(values[v.id], values[control.id], settings.alpha)
            seq = msprt(c.relative_lift, c.relative_se**2, settings.sequential_tau, settings.alpha)
            comparisons.append({"variant": v.key, "relative_lift": c.relative_lift, "ci_low": c.ci_low,
                                "ci_high": c.ci_high, "p_value": c.p_value, "sequential_ci_low": seq.ci_low,
                                "sequential_ci_high": seq.ci_high, "sequential_p_value": seq.p_value})
        out_days.append({"date": day.isoformat(),
                         "variants": [{"variant": v.key, "users": moments[v.id].n, "mean": values[v.id].value}
                                      for v in variants],
                         "comparisons": comparisons})
    return {"metric": metric.key, "days": out_days}
