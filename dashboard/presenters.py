"""Turns a report (analysis/report.py) into what the results page shows: pure, no Django import."""

import math
from dataclasses import dataclass

from analysis.report import Comparison, GuardrailTest, MetricCap, MetricResult, Report


def pct(x, digits=2) -> str:
    return "—" if x is None else f"{x * 100:+.{digits}f}%"


def num(x, digits=4) -> str:
    if x is None:
        return "—"
    return f"{x:,.{digits}f}" if abs(x) < 1000 else f"{x:,.0f}"


def p_text(p, alpha: float = 0.05) -> str:
    """Three significant digits, never in exponent form: 0.500, 0.0123, 0.000123; more
    where rounding would cross α (0.04996 is "0.04996", not "0.0500" beside "significant")."""
    if p is None:
        return "—"
    if p < 0.0001:
        return "< 0.0001"
    decimals = max(3, 2 - math.floor(math.log10(p)))
    while decimals < 10 and (round(p, decimals) < alpha) != (p < alpha):
        decimals += 1
    return f"{p:.{decimals}f}"


RATE_KINDS = ("proportion", "ratio")  # shown as percentages, their differences in points


def value_text(x, kind: str) -> str:
    if x is None:
        return "—"
    return f"{x * 100:.2f}%" if kind in RATE_KINDS else num(x)


def difference_text(x, kind: str) -> str:
    if x is None:
        return "—"
    return f"{x * 100:+.2f} pp" if kind in RATE_KINDS else f"{x:+,.4f}" if abs(x) < 1000 else f"{x:+,.0f}"


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
    """Fixed-horizon or sequential, with or without CUPED.

    Sequential: the always-valid p-value and interval of the relative lift as running
    values (minimum p over the looks so far, intersection of their confidence sequences;
    docs/statistics.md "Sequential testing"), so `significant` is exactly "the interval
    excludes 0" and stays true at later looks. The interval is None when the looks'
    intervals no longer intersect (then the test has rejected)."""
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


def guardrail_words(g: GuardrailTest | None) -> tuple[str, str] | None:
    """A guardrail's non-inferiority verdict in words, with its css class; None without one."""
    if g is None:
        return None
    margin = pct(g.margin, 1).lstrip("+")
    if g.verdict == "regressed":
        return f"guardrail regressed: significantly worse than the control (margin {margin})", "bad"
    if g.verdict == "within_margin":
        return f"within the {margin} margin: at worst {pct(g.bound)}", "good"
    if g.bound is None:
        return f"inconclusive: not enough data to bound the change against the {margin} margin", "neutral"
    return f"inconclusive: could be as bad as {pct(g.bound)}, beyond the {margin} margin", "neutral"


def cap_words(cap: MetricCap | None) -> str | None:
    """How the metric was capped, for the table's caption."""
    if cap is None:
        return None
    def at(v):
        return "—" if v is None else f"{v:,.2f}".rstrip("0").rstrip(".")

    if cap.denominator_value is not None:
        where = f"numerator at {at(cap.value)}, denominator at {at(cap.denominator_value)}"
    else:
        where = f"at {at(cap.value)}"
    return f"each user's counts capped at the {cap.percentile:g}th percentile ({where})"


def metric_rows(result: MetricResult, cuped: bool, sequential: bool) -> list[dict]:
    comparisons = {c.variant: c for c in result.comparisons}
    rows = []
    for v in result.variants:
        row = {"variant": v.variant, "is_control": v.is_control, "users": f"{v.users:,}",
               "mean": value_text(v.cuped_mean if cuped and v.cuped_mean is not None else v.mean, result.kind)}
        c = comparisons.get(v.variant)
        if c is not None:
            x = chosen(c, cuped, sequential)
            words, css = verdict(x, result.direction)
            chance = c.chance_to_beat_control
            row.update(absolute_lift=difference_text(x.absolute_lift, result.kind), relative_lift=pct(x.relative_lift),
                       ci=f"{pct(x.ci_low)} to {pct(x.ci_high)}", p_value=p_text(x.p_value),
                       verdict=words, verdict_class=css,
                       chance=pct(chance, 1).lstrip("+") if chance is not None else "—")
            guard = guardrail_words(c.guardrail) if result.role == "guardrail" else None
            if guard is not None:
                row.update(guardrail=guard[0], guardrail_class=guard[1])
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


# A variant that falls back this often is partly measuring its fallback: the page says so.
FALLBACK_WARNING_RATE = 0.01


def serving_rows(serving: list[dict] | None) -> list[dict]:
    """Per variant, the closeups its config shaped and how many fell back, for people."""
    rows = []
    for s in serving or []:
        rate = s.get("fallback_rate")
        rows.append({"variant": s["variant"], "requests": f"{s['requests']:,}", "fallbacks": f"{s['fallbacks']:,}",
                     "rate": "—" if rate is None else f"{rate * 100:.2f}%",
                     "warn": rate is not None and rate >= FALLBACK_WARNING_RATE})
    return rows


@dataclass(frozen=True)
class ShipAdvice:
    """What the ship dialog preselects, and what it warns about, in words."""

    variant: str | None  # the variant the results favour (the control when none beats it)
    reason: str
    warnings: tuple[str, ...]


def best_improvement(primary: MetricResult) -> Comparison | None:
    """The treatment the primary metric favours: the largest significant improvement."""
    better = [c for c in primary.comparisons if c.significant and c.improved]
    return max(better, key=lambda c: abs(c.relative_lift or 0)) if better else None


def regressed(c: Comparison) -> bool:
    """A guardrail comparison significantly worse than its baseline."""
    return c.significant and c.improved is False


def ship_advice(report: Report | None, control: str | None) -> ShipAdvice:
    if report is None or report.primary is None:
        return ShipAdvice(control, "", ("There are no results yet: nothing says any variant is better than the "
                                        "control.",))
    primary, warnings = report.primary, []
    best = best_improvement(primary)
    if best is not None:
        advice = (best.variant, f"{best.variant} is significantly better than {best.baseline} on {primary.name} "
                                f"({pct(best.relative_lift)}, 95% CI {pct(best.ci_low)} to {pct(best.ci_high)}).")
    else:
        advice = (control, f"No variant is significantly better than {control} on {primary.name}: keeping "
                           f"{control} is the safe choice.")
        warnings.append(f"The primary metric ({primary.name}) shows no significant improvement.")
    progress = _power_progress(report)
    if progress is not None and progress[0] < progress[1]:
        power = report.power
        mde = pct(power.relative_mde, 1).lstrip("+")
        warnings.append(f"Underpowered: {progress[0]:,} users {progress[2]} of the "
                        f"{progress[1]:,} the plan needs to detect a {mde} change. "
                        + ("A lift found this early tends to be overstated: expect less after launch."
                           if best is not None else f"A real {mde} effect may well be missed."))
    for m in report.metrics:
        if m.role != "guardrail":
            continue
        for c in m.comparisons:
            if regressed(c):
                warnings.append(f"Guardrail regressed: {m.name} is significantly worse in {c.variant} "
                                f"({pct(c.relative_lift)}).")
            elif c.guardrail is not None and c.guardrail.verdict == "inconclusive":
                warnings.append(f"Guardrail inconclusive: {m.name} in {c.variant} is not shown to stay within its "
                                f"{pct(c.guardrail.margin, 1).lstrip('+')} margin.")
    if report.srm.flagged:
        warnings.append("The split is off (sample ratio mismatch): users were lost from a variant, so no lift "
                        "on this page can be trusted until the cause is found.")
    return ShipAdvice(advice[0], advice[1], tuple(warnings))


_AUDIT_HIDDEN = {"allocation"}  # bucket ranges: the weights beside them say it for people


def _power_progress(report: Report) -> tuple[int, int, str] | None:
    """(users now, users the plan needs, what they count): per variant for an equal split
    (the plan's own numbers), in all for an unequal one, whose arms need different counts."""
    power = report.power
    if power is None or not power.users_per_variant or power.users_per_variant_now is None:
        return None
    if power.users_needed and len({round(w, 9) for w in power.weights.values()}) > 1:
        return report.users, power.users_needed, "in all"
    return power.users_per_variant_now, power.users_per_variant, "per variant"


def audit_changes(before: dict | None, after: dict | None) -> list[str]:
    """What an audited change changed, old and new, in words: 'traffic_percent: 50 → 10'."""
    before, after = before or {}, after or {}
    if not before:
        return ["created"] if after else []
    lines = []
    for field in sorted(set(before) | set(after)):
        old, new = before.get(field), after.get(field)
        if old == new or field in _AUDIT_HIDDEN:
            continue
        if field == "variants" and isinstance(old, list) and isinstance(new, list):
            olds = {v.get("key"): v for v in old}
            for v in new:
                was = olds.get(v.get("key"), {})
                for attr in ("weight", "recommender", "forced_user_ids"):
                    if was.get(attr) != v.get(attr):
                        lines.append(f"{v.get('key')} {attr}: {_short(was.get(attr))} → {_short(v.get(attr))}")
            continue
        lines.append(f"{field}: {_short(old)} → {_short(new)}")
    return lines


def _short(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "…"


@dataclass(frozen=True)
class Decision:
    """The results page's verdict box: what to do, in words, and why."""

    headline: str
    detail: str
    css: str  # good, bad or neutral: never the only signal


def decision(report: Report | None) -> Decision:
    """Statsig's decision framework in short: a broken split first, then a regressed
    guardrail, then the primary metric (ship the best significant improvement), else
    how far the experiment is towards its planned sample."""
    if report is None or report.primary is None:
        return Decision("No verdict yet", "There are no results for a primary metric yet.", "neutral")
    primary = report.primary
    users = f"{report.users:,} users"
    if report.srm.flagged:
        return Decision("Don't trust these results yet",
                        "The split is off (sample ratio mismatch): users are being lost from a variant. "
                        "Find the cause before reading any lift.", "bad")
    harmed = [(m, c) for m in report.metrics if m.role == "guardrail" for c in m.comparisons if regressed(c)]
    best = best_improvement(primary)
    if harmed:
        m, c = harmed[0]
        return Decision(f"Don't ship {c.variant}: {m.name} regressed",
                        f"{m.name} {pct(c.relative_lift)} (95% CI {pct(c.ci_low)} to {pct(c.ci_high)}) "
                        f"against {c.baseline}; {users}.", "bad")
    if best is not None:
        guards = [m for m in report.metrics if m.role == "guardrail"]
        unsure = [m.name for m in guards for c in m.comparisons
                  if c.variant == best.variant and c.guardrail is not None and c.guardrail.verdict == "inconclusive"]
        held = (f"guardrails inconclusive: {', '.join(unsure)}" if unsure
                else "guardrails hold" if guards else "no guardrails")
        return Decision(f"Ship {best.variant}",
                        f"{primary.name} {pct(best.relative_lift)} (95% CI {pct(best.ci_low)} to "
                        f"{pct(best.ci_high)}); {held}; {users}.", "good" if not unsure else "neutral")
    worse = [c for c in primary.comparisons if c.significant and c.improved is False]
    if worse and len(worse) == len(primary.comparisons):
        c = worse[0]
        return Decision(f"Don't ship: {primary.name} is worse",
                        f"{c.variant} {pct(c.relative_lift)} (95% CI {pct(c.ci_low)} to {pct(c.ci_high)}); "
                        f"{users}.", "bad")
    power = report.power
    progress = _power_progress(report)
    if progress is not None:
        share = min(1.0, progress[0] / progress[1])
        if share < 1:
            return Decision("Keep running",
                            f"No significant difference on {primary.name} yet, at {share * 100:.0f}% of the users "
                            f"the plan needs ({progress[0]:,} of {progress[1]:,} {progress[2]} "
                            f"to detect a {pct(power.relative_mde, 1).lstrip('+')} change).", "neutral")
        return Decision("No difference found",
                        f"The planned sample is reached and {primary.name} shows no significant difference: "
                        "the variants are likely within the minimum detectable effect of each other.", "neutral")
    return Decision("Keep running", f"No significant difference on {primary.name} yet; {users}.", "neutral")


CORRECTION_WORDS = {"holm": "Holm", "bh": "Benjamini–Hochberg", "none": "no correction"}


def planner_text(plan: dict | None) -> dict | None:
    """GET …/power's answer (analysis.selectors.power_plan) in words and separators: what a
    draft's planner shows before there is any report."""
    if not plan:
        return None
    days = plan.get("days_needed")
    baseline = plan.get("baseline") or {}
    shares = list((plan.get("weights") or {}).values())
    return {
        "metric": plan["metric"], "mde": pct(plan["mde"], 1).lstrip("+"), "alpha": f"{plan['alpha']:g}",
        "power": f"{plan['power']:.0%}",
        "split": " / ".join(f"{w:.0%}" for w in shares),
        "comparisons": plan["comparisons"],
        "correction": CORRECTION_WORDS.get(plan["correction"], plan["correction"]),
        "users_needed": "—" if plan["users_needed"] is None else f"{plan['users_needed']:,}",
        "smallest_arm": "—" if plan["users_needed_smallest_arm"] is None else f"{plan['users_needed_smallest_arm']:,}",
        "users_per_day": f"{plan['users_per_day']:,.0f}" if plan["users_per_day"] else "—",
        "days": "no estimate" if days is None else f"{days:,.1f} days",
        "baseline_mean": num(plan["baseline_mean"]), "source": plan["baseline_source"],
        "baseline_users": f"{baseline['users']:,}" if baseline.get("users") is not None else None,
        "traffic_share": f"{baseline['traffic_share']:.0%}" if baseline.get("traffic_share") is not None else None,
    }
