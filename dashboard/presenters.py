"""Turns a report (analysis/report.py) into what the results page shows: pure, no Django import."""

from dataclasses import dataclass

from analysis.report import Comparison, MetricResult, Report


def pct(x, digits=2) -> str:
    return "—" if x is None else f"{x * 100:+.{digits}f}%"


def num(x, digits=4) -> str:
    if x is None:
        return "—"
    return f"{x:,.{digits}f}" if abs(x) < 1000 else f"{x:,.0f}"


def p_text(p) -> str:
    if p is None:
        return "—"
    return "< 0.0001" if p < 0.0001 else f"{p:.4f}"


@dataclass(frozen=True)
class Reading:
    """The numbers of one comparison under the page's toggles."""

    relative_lift: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    significant: bool
    absolute_lift: float | None


def chosen(comparison: Comparison, cuped: bool, sequential: bool) -> Reading:
    """Fixed-horizon or sequential, with or without CUPED."""
    base = comparison.cuped if cuped and comparison.cuped else comparison
    if sequential:
        seq = base.sequential
        return Reading(base.relative_lift, seq.ci_low, seq.ci_high, seq.p_value, bool(seq.significant),
                       base.absolute_lift)
    return Reading(base.relative_lift, base.ci_low, base.ci_high, base.p_value_adjusted, bool(base.significant),
                   base.absolute_lift)


def verdict(c: Reading, direction: str) -> tuple[str, str]:
    """(words, css class): never colour alone."""
    if c.relative_lift is None:
        return "not enough data", "neutral"
    if not c.significant:
        return "not significant", "neutral"
    better = (c.relative_lift > 0) == (direction != "lower")
    return ("significantly better", "good") if better else ("significantly worse", "bad")


def metric_rows(result: MetricResult, cuped: bool, sequential: bool) -> list[dict]:
    comparisons = {c.variant: c for c in result.comparisons}
    rows = []
    for v in result.variants:
        row = {"variant": v.variant, "is_control": v.is_control, "users": f"{v.users:,}",
               "mean": num(v.cuped_mean if cuped and v.cuped_mean is not None else v.mean)}
        c = comparisons.get(v.variant)
        if c is not None:
            x = chosen(c, cuped, sequential)
            words, css = verdict(x, result.direction)
            chance = c.chance_to_beat_control
            row.update(absolute_lift=num(x.absolute_lift), relative_lift=pct(x.relative_lift),
                       ci=f"{pct(x.ci_low)} to {pct(x.ci_high)}", p_value=p_text(x.p_value),
                       verdict=words, verdict_class=css,
                       chance=pct(chance, 1).lstrip("+") if chance is not None else "—")
        rows.append(row)
    return rows


def forest_data(report: Report, cuped: bool, sequential: bool) -> list[dict]:
    points = []
    for result in report.metrics:
        if result.role not in ("primary", "guardrail"):
            continue
        for c in result.comparisons:
            x = chosen(c, cuped, sequential)
            if x.relative_lift is None or x.ci_low is None:
                continue
            points.append({"label": f"{result.metric} · {c.variant}", "lift": x.relative_lift,
                           "low": x.ci_low, "high": x.ci_high, "significant": x.significant})
    return points


def series_data(report: Report, sequential: bool) -> dict:
    """The chart's lines: one per treatment, the days where its lift has an interval."""
    series = report.series
    lines: dict[str, dict] = {}
    for day in series.days if series else ():
        for c in day.comparisons:
            low = c.sequential_ci_low if sequential else c.ci_low
            high = c.sequential_ci_high if sequential else c.ci_high
            if c.relative_lift is None or low is None:
                continue
            line = lines.setdefault(c.variant, {"variant": c.variant, "dates": [], "lift": [], "low": [], "high": []})
            line["dates"].append(day.day.isoformat())
            line["lift"].append(c.relative_lift)
            line["low"].append(low)
            line["high"].append(high)
    return {"metric": series.metric if series else None, "lines": list(lines.values())}


def primary_summary(report: Report | None) -> list[dict]:
    """For the list page: each treatment's primary-metric lift with its CI and mark."""
    primary = report.primary if report else None
    if primary is None:
        return []
    out = []
    for c in primary.comparisons:
        x = chosen(c, False, False)
        words, css = verdict(x, primary.direction)
        out.append({"variant": c.variant, "lift": pct(x.relative_lift),
                    "ci": f"{pct(x.ci_low)} to {pct(x.ci_high)}", "verdict": words, "css": css})
    return out
