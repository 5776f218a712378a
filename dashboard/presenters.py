"""Turns a report (analysis/report.py) into what the results page shows: pure, no Django import."""

import math
from dataclasses import dataclass
from datetime import datetime

from analysis.offline_online import MIN_FOR_CORRELATION, OnlineReading, Summary, online_reading
from analysis.offline_online import Row as OfflineOnlineRow
from analysis.report import Comparison, GuardrailTest, InterleavingResult, MetricCap, MetricResult, Report
from analysis.results import NOTHING_TO_TEST, UNDEFINED_VALUE
from recommenders.offline_compare import ExperimentOffline, OfflineDifference


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
    enough_data: bool = True
    wait_for: str = ""  # below the minimum-data rule: what it still needs, in words


def not_enough_words(c: Comparison) -> str:
    """"not enough data yet: about 1,240 more users", or why there is nothing to test."""
    check = c.minimum_data
    if check is None or not check.reason:
        return "not enough data yet"
    if check.reason in (NOTHING_TO_TEST, UNDEFINED_VALUE):
        return f"no verdict: {check.reason}"
    if check.more_users:
        return f"not enough data yet: about {check.more_users:,} more users"
    return "not enough data yet"  # no event anywhere to extrapolate from; the reason is shown beside it


def chosen(comparison: Comparison, cuped: bool, sequential: bool) -> Reading:
    """Fixed-horizon or sequential, with or without CUPED.

    Sequential: the always-valid p-value and interval of the relative lift as running
    values (minimum p over the looks so far, intersection of their confidence sequences;
    docs/statistics.md "Sequential testing"), so `significant` is exactly "the interval
    excludes 0" and stays true at later looks. The interval is None when the looks'
    intervals no longer intersect (then the test has rejected)."""
    if not comparison.enough_data:
        return Reading(comparison.relative_lift, None, None, None, False, comparison.absolute_lift,
                       enough_data=False, wait_for=not_enough_words(comparison))
    base = comparison.cuped if cuped and comparison.cuped else comparison
    if sequential:
        seq = base.sequential
        return Reading(base.relative_lift, seq.ci_low, seq.ci_high, seq.p_value, bool(seq.significant),
                       base.absolute_lift)
    return Reading(base.relative_lift, base.ci_low, base.ci_high, base.p_value_adjusted, bool(base.significant),
                   base.absolute_lift)


def verdict(c: Reading, direction: str) -> tuple[str, str]:
    """(words, css class): never colour alone."""
    if not c.enough_data:
        return c.wait_for or "not enough data yet", "neutral"
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
    rows, readings = [], []
    for v in result.variants:
        row = {"variant": v.variant, "is_control": v.is_control, "users": f"{v.users:,}",
               "mean": value_text(v.cuped_mean if cuped and v.cuped_mean is not None else v.mean, result.kind)}
        c = comparisons.get(v.variant)
        x = chosen(c, cuped, sequential) if c is not None else None
        readings.append(x)
        if c is not None:
            words, css = verdict(x, result.direction)
            chance = c.chance_to_beat_control
            row.update(absolute_lift=difference_text(x.absolute_lift, result.kind), relative_lift=pct(x.relative_lift),
                       ci=f"{pct(x.ci_low)} to {pct(x.ci_high)}" if x.ci_low is not None else "—",
                       p_value=p_text(x.p_value), verdict=words, verdict_class=css,
                       wait_reason=c.minimum_data.reason if not x.enough_data and c.minimum_data else "",
                       chance=pct(chance, 1).lstrip("+") if chance is not None else "—")
            guard = guardrail_words(c.guardrail) if result.role == "guardrail" else None
            if guard is not None:
                row.update(guardrail=guard[0], guardrail_class=guard[1])
        rows.append(row)
    interval_bars(rows, readings)
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
                    "ci": f"{pct(x.ci_low)} to {pct(x.ci_high)}" if x.ci_low is not None else "no interval yet",
                    "verdict": words, "css": css})
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
    for c in primary.comparisons:
        if not c.enough_data:
            warnings.append(f"{c.variant}: {not_enough_words(c)} on {primary.name}"
                            + (f" ({c.minimum_data.reason})." if c.minimum_data and c.minimum_data.reason else "."))
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
    if report is not None and report.interleaving is not None:
        return interleaving_decision(report)
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
    waiting = [c for c in primary.comparisons if not c.enough_data]
    if best is None and waiting and len(waiting) == len(primary.comparisons):
        more = [c.minimum_data.more_users for c in waiting if c.minimum_data and c.minimum_data.more_users]
        reason = waiting[0].minimum_data.reason if waiting[0].minimum_data else ""
        return Decision("Not enough data yet" + (f": about {max(more):,} more users" if more else ""),
                        f"No verdict on {primary.name} until every variant reaches the minimum data"
                        + (f" ({reason})" if reason else "") + f"; {users} so far.", "neutral")
    if best is not None:
        guards = [m for m in report.metrics if m.role == "guardrail"]
        unsure = [m.name + ("" if c.enough_data else " (not enough data yet)") for m in guards for c in m.comparisons
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


# GrowthBook warns about users in several variations from 1% of the users on.
OTHER_VARIANTS_WARNING_SHARE = 0.01
# Events older than this when the analysis ran mean the pipeline is behind.
STALE_AFTER_MINUTES = 60


@dataclass(frozen=True)
class HealthLine:
    label: str
    text: str
    css: str  # good, bad or neutral


def _ago(minutes: float) -> str:
    if minutes < 1:
        return "less than a minute"
    if minutes < 90:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:,.1f} h"


def health_lines(report: Report, computed_at: datetime) -> list[HealthLine]:
    """The health panel beside the sample-ratio check: how fresh the events were, and
    how many users were also seen in another variant, in words."""
    health = report.health
    if health is None:
        return []
    lines = []
    if health.events_stored_until is None:
        lines.append(HealthLine("Data freshness", "No event had been stored when this analysis ran.", "neutral"))
    else:
        stored = datetime.fromisoformat(health.events_stored_until)
        lag = max(0.0, (computed_at - stored).total_seconds() / 60)
        text = (f"Events stored up to {stored:%Y-%m-%d %H:%M} UTC, {_ago(lag)} before this analysis ran")
        css = "bad" if lag > STALE_AFTER_MINUTES else "good"
        if health.batches_waiting:
            since = datetime.fromisoformat(health.oldest_waiting_since) if health.oldest_waiting_since else None
            text += (f"; {health.batches_waiting:,} accepted batch{'es' if health.batches_waiting > 1 else ''} "
                     "not stored yet" + (f" (waiting since {since:%H:%M} UTC)" if since else "")
                     + ": their events are not counted")
            css = "bad" if css == "bad" or lag > STALE_AFTER_MINUTES / 4 else "neutral"
        lines.append(HealthLine("Data freshness", text + ".", css))
    n = health.users_in_other_variants
    share = n / report.users if report.users else 0.0
    if n == 0:
        lines.append(HealthLine("Users in several variants", "None: every user saw only their own variant.", "good"))
    else:
        warn = share >= OTHER_VARIANTS_WARNING_SHARE
        lines.append(HealthLine(
            "Users in several variants",
            f"{n:,} users ({share * 100:.2f}% of {report.users:,}) were also reported in another variant; each is "
            "counted in the variant they were first exposed to"
            + (". At this share the variants contaminate each other: find the client or cache serving stale "
               "assignments before reading a small lift." if warn else ", too few to move the results."),
            "bad" if warn else "neutral"))
    return lines


def exposure_timeline(report: Report, markers: list[tuple[datetime, str]]) -> dict:
    """New and cumulative exposed users per day and variant (from the daily series), the
    plan's users per variant, and the phases and ramps to mark on the chart."""
    series = report.series
    days = series.days if series else ()
    variants = [v.variant for v in days[0].variants] if days else []
    cumulative = {v: [next((x.users for x in d.variants if x.variant == v), 0) for d in days] for v in variants}
    new = {v: [c - (cs[i - 1] if i else 0) for i, c in enumerate(cs)] for v, cs in cumulative.items()}
    power = report.power
    planned = power.users_per_variant if power is not None else None
    smallest = min((cs[-1] for cs in cumulative.values()), default=0)
    if planned:
        share = min(1.0, smallest / planned)
        progress = (f"{share * 100:.0f}% of the planned sample: {smallest:,} of {planned:,} users in the "
                    f"smallest variant")
    else:
        progress = f"{smallest:,} users in the smallest variant; no planned sample yet"
    return {"dates": [d.day.isoformat() for d in days], "new": new, "cumulative": cumulative, "planned": planned,
            "markers": [{"date": at.date().isoformat(), "label": label} for at, label in markers],
            "progress": progress}


def interval_bars(rows: list[dict], readings: list[Reading | None]) -> None:
    """Add to each row an inline bar of its interval, on an axis shared by the table:
    `bar` = {"left", "width", "zero", "point"} in % of the axis, and its css class."""
    shown = [r for r in readings if r is not None and r.ci_low is not None and r.ci_high is not None]
    if not shown:
        return
    lo = min(0.0, *(r.ci_low for r in shown))
    hi = max(0.0, *(r.ci_high for r in shown))
    span = (hi - lo) or 1.0

    def at(x: float) -> float:
        return round((x - lo) / span * 100, 2)

    for row, r in zip(rows, readings, strict=True):
        if r is None or r.ci_low is None or r.ci_high is None:
            continue
        row["bar"] = {"left": at(r.ci_low), "width": max(0.5, at(r.ci_high) - at(r.ci_low)), "zero": at(0.0),
                      "point": at(min(max(r.relative_lift, r.ci_low), r.ci_high)) if r.relative_lift is not None
                      else None,
                      "css": row.get("verdict_class", "neutral")}


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


# --- Interleaving -------------------------------------------------------------------


def preference_words(block: InterleavingResult, alpha: float = 0.05) -> str:
    """The result in one sentence: "Of 1,204 users with a preference, 58% preferred
    ranker's pins over popularity's; p < 0.0001"."""
    control, treatment = block.wins.get(block.control, 0), block.wins.get(block.treatment, 0)
    decided = control + treatment
    if decided == 0:
        return "No user has preferred either ranker's pins yet."
    leader, other, share = ((block.treatment, block.control, treatment / decided) if treatment >= control
                            else (block.control, block.treatment, control / decided))
    p = p_text(block.p_value, alpha)
    return (f"Of {decided:,} users with a preference, {share * 100:.0f}% preferred {leader}'s pins over "
            f"{other}'s" + (f"; p {p}" if p.startswith("<") else f"; p = {p}" if block.p_value is not None else ""))


def interleaving_decision(report: Report) -> Decision:
    block = report.interleaving
    if report.srm.flagged:
        return Decision("Don't trust these results yet",
                        "The assignment split is off (sample ratio mismatch): users are being lost from a variant. "
                        "Find the cause before reading the preference.", "bad")
    words = preference_words(block, report.settings.alpha)
    ties = f"; {block.ties:,} more clicked both equally" if block.ties else ""
    if not block.enough_data:
        more = f": about {block.more_users:,} more users with a click" if block.more_users else ""
        return Decision("Not enough data yet" + more,
                        f"{words}{ties}. No verdict before {block.users + (block.more_users or 0):,} users have "
                        "clicked or saved an interleaved pin.", "neutral")
    interval = f"Δ {delta_text(block.delta)} (95% CI {delta_text(block.ci_low)} to {delta_text(block.ci_high)})"
    if block.winner is not None:
        return Decision(f"{block.winner} is the better ranker",
                        f"{words}{ties}. {interval}. Confirm effects on sessions or saves per user with an A/B "
                        "test before shipping, if those matter.", "good")
    return Decision("No preference found yet", f"{words}{ties}. {interval}: keep running.", "neutral")


def delta_text(x) -> str:
    """Δ is a difference of shares of users: in points."""
    return "—" if x is None else f"{x * 100:+.1f} pp"


def interleaving_table(block: InterleavingResult, alpha: float = 0.05) -> dict:
    decided = sum(block.wins.values())
    return {
        "words": preference_words(block, alpha),
        "rows": [{"team": team, "is_control": team == block.control, "wins": f"{n:,}",
                  "share": f"{n / decided * 100:.1f}%" if decided else "—"} for team, n in block.wins.items()],
        "users": f"{block.users:,}", "ties": f"{block.ties:,}", "uncredited": f"{block.uncredited:,}",
        "delta": delta_text(block.delta),
        "ci": "—" if block.ci_low is None else f"{delta_text(block.ci_low)} to {delta_text(block.ci_high)}",
        "p_value": p_text(block.p_value, alpha),
        "verdict": (f"{block.winner} wins" if block.winner else "not enough data yet" if not block.enough_data
                    else "no preference yet"),
        "verdict_class": "good" if block.winner else "neutral",
    }


def interleaving_series(block: InterleavingResult) -> dict:
    """The Δ-over-time chart: the same shape as series_data's, one line."""
    days = [d for d in block.series if d.delta is not None and d.ci_low is not None]
    line = {"variant": f"Δ ({block.treatment} over {block.control})", "dates": [d.day.isoformat() for d in days],
            "lift": [d.delta * 100 for d in days], "low": [d.ci_low * 100 for d in days],
            "high": [d.ci_high * 100 for d in days]}
    return {"metric": "Δ", "unit": "pp", "lines": [line] if days else []}


# --- Recommenders page ---------------------------------------------------------------


def version_row(v, experiments: list[str]) -> dict:
    """A built version as the recommenders page shows it: its held-out numbers and what
    the gate said, in words (v: a ModelVersion)."""
    gate = v.gate or {}
    offline = v.offline or {}
    if v.name == "catalog":
        verdict, tone, detail = "—", "", "the pins and histories the versions of this build were made on"
    elif not gate:
        verdict, tone, detail = "not gated", "", "a full build (build_recommenders or Build all now)"
    elif gate.get("passed"):
        change = gate.get("ndcg_change")
        verdict, tone = "passed", "good"
        detail = ("first version: nothing to compare with" if change is None else
                  f"NDCG@10 {change:+.4f} against {gate.get('baseline_version')}")
    else:
        verdict, tone, detail = "failed: never served", "bad", "; ".join(gate.get("reasons") or [])
    return {"name": v.name, "version": v.version, "built_at": v.built_at, "build_seconds": v.build_seconds,
            "size_mb": v.size_bytes / 1e6, "is_active": v.is_active, "servable": v.servable,
            "ndcg": offline.get("ndcg_at_10"), "users": offline.get("users"),
            "coverage": None if offline.get("coverage") is None else f"{offline['coverage']:.1%}",
            "holdout_day": (offline.get("holdout_start") or "")[:10], "verdict": verdict, "tone": tone,
            "detail": detail, "experiments": experiments, "job": v.build_job_id}


def build_job_row(job) -> dict:
    """A build job with its progress in words: 'step 3 of 7: built pixie' (job: a BuildJob)."""
    share = job.steps_done / job.steps_total if job.steps_total else None
    if job.state == "queued":
        words = job.step or "waiting for the builds worker"
    elif job.state == "running":
        words = (f"step {job.steps_done + 1} of {job.steps_total}: {job.step}" if job.steps_total
                 else job.step or "starting")
    elif job.state == "failed":
        words = (job.error.splitlines() or ["failed"])[0]
    else:
        summary = job.summary or {}
        words = summary.get("experiment_note") or f"built {', '.join(summary.get('built', [])) or 'the catalog'}"
    tone = {"succeeded": "good", "failed": "bad", "running": "warn"}.get(job.state, "")
    took = (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else None
    return {"id": job.pk, "kind": job.kind, "state": job.state, "tone": tone, "share": share,
            "percent": None if share is None else round(share * 100), "words": words, "version": job.version,
            "created_at": job.created_at, "took": None if took is None else f"{took:,.0f} s",
            "experiment": (job.summary or {}).get("experiment"), "attempts": job.attempts}


# --- Alerts page -----------------------------------------------------------------------


def delivery_row(d) -> dict:
    """A delivery as the log shows it: where it went and each attempt's answer (d: a Delivery)."""
    codes = [str(h["status_code"]) if h.get("status_code") is not None else "no answer" for h in d.history]
    tone = {"delivered": "good", "failed": "bad", "retrying": "warn"}.get(d.state, "")
    return {"id": str(d.id), "created_at": d.created_at, "event": d.event,
            "experiment": (d.payload.get("experiment") or {}).get("key"),
            "to": d.webhook.url if d.webhook_id else d.recipient, "channel": d.channel, "state": d.state,
            "tone": tone, "attempts": d.attempts, "codes": " → ".join(codes) or "—", "error": d.error,
            "next_attempt_at": d.next_attempt_at}
# --- Offline beside online ----------------------------------------------------------


def ndcg_text(x) -> str:
    return "—" if x is None else f"{x:.4f}"


def share_text(x) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def offline_change_text(d: OfflineDifference | None) -> str:
    """"+3.1% (+0.0042)": relative first, as the online lift beside it."""
    if d is None or not d.comparable:
        return "—"
    absolute = f"{d.ndcg_change:+.4f}"
    return f"{pct(d.ndcg_relative_change, 1)} ({absolute})" if d.ndcg_relative_change is not None else absolute


def online_text(o: OnlineReading | None) -> str:
    """The treatment's online number as its results table shows it: a relative lift in %,
    a preference Δ in points, with the 95% interval in brackets."""
    if o is None or o.value is None:
        return "no online result yet"
    fmt = delta_text if o.kind == "preference_delta" else pct
    interval = f" [{fmt(o.ci_low)}, {fmt(o.ci_high)}]" if o.ci_low is not None and o.ci_high is not None else ""
    return f"{'Δ ' if o.kind == 'preference_delta' else ''}{fmt(o.value)}{interval}"


def online_verdict(o: OnlineReading | None) -> tuple[str, str]:
    if o is None or o.value is None:
        return "no result", "neutral"
    if not o.enough_data:
        return "not enough data yet", "neutral"
    if not o.significant:
        return "not significant", "neutral"
    better = (o.improvement or 0) > 0
    return ("significantly better", "good") if better else ("significantly worse", "bad")


def agreement_text(agrees: bool | None) -> tuple[str, str]:
    if agrees is None:
        return "—", "neutral"
    return ("agree", "good") if agrees else ("disagree", "bad")


def offline_sentence(d: OfflineDifference, online: OnlineReading | None) -> str:
    """"Offline, retrained's NDCG@10 is 3.1% above in-use's on the held-out day 2026-12-07;
    online, its click-through rate is +1.20% [-0.40%, +2.80%]"."""
    if d.comparable and d.ndcg_relative_change is not None:
        change = d.ndcg_relative_change
        how = (f"{abs(change) * 100:.1f}% above" if change > 0 else f"{abs(change) * 100:.1f}% below" if change < 0
               else "the same as")
        offline = f"Offline, {d.variant}'s NDCG@10 is {how} {d.baseline}'s on the {d.source}"
    elif d.comparable:
        offline = f"Offline, {d.variant}'s NDCG@10 is {d.ndcg_change:+.4f} against {d.baseline}'s on the {d.source}"
    else:
        offline = f"Offline, no comparison of {d.variant} with {d.baseline} ({d.reason})"
    if online is None or online.value is None:
        return f"{offline}; online, no result yet."
    if online.kind == "preference_delta":
        return f"{offline}; online, users' preference for its pins is {online_text(online)}."
    return f"{offline}; online, its {online.metric} is {online_text(online)}."


def page_reading(report: Report | None, variant: str, cuped: bool, sequential: bool) -> OnlineReading | None:
    """The online result as the page's toggles read it, so the section never shows another
    number than the metric table above it."""
    if report is None or report.interleaving is not None or report.primary is None:
        return online_reading(report, variant)
    c = next((c for c in report.primary.comparisons if c.variant == variant), None)
    if c is None:
        return None
    x = chosen(c, cuped, sequential)
    return OnlineReading("relative_lift", report.primary.name, x.relative_lift, x.ci_low, x.ci_high, x.significant,
                         report.primary.direction != "lower", x.enough_data)


def offline_beside_online(offline: ExperimentOffline, report: Report | None, cuped: bool = False,
                          sequential: bool = False) -> dict:
    """The results page's section: each variant's offline numbers, each treatment's offline
    change beside its online result, one sentence per treatment."""
    differences = {d.variant: d for d in offline.differences}
    readings = {d.variant: page_reading(report, d.variant, cuped, sequential) for d in offline.differences}
    rows = []
    for v in offline.variants:
        n, d = v.numbers, differences.get(v.variant)
        online = readings.get(v.variant)
        words, css = online_verdict(online)
        rows.append({
            "variant": v.variant, "is_control": v.is_control,
            "recommender": f"{v.recommender}@{v.version}" if v.version else f"{v.recommender} (no version)",
            "ndcg": ndcg_text(n.ndcg_at_10 if n else None), "coverage": share_text(n.coverage if n else None),
            "users": f"{n.users:,}" if n and n.users is not None else "—",
            "source": n.described if n else "no offline numbers",
            "change": offline_change_text(d) if d is not None else "", "reason": d.reason if d is not None else "",
            "online": online_text(online) if d is not None else "", "verdict": words, "verdict_class": css,
        })
    sentences = [offline_sentence(d, readings[d.variant]) for d in offline.differences]
    first = next((o for o in readings.values() if o is not None), None)
    label = None if first is None else "preference Δ" if first.kind == "preference_delta" else \
        f"{first.metric}, relative lift"
    return {"rows": rows, "sentences": sentences, "any": any(v.numbers for v in offline.variants),
            "online_label": label}


def offline_online_table(rows: list[OfflineOnlineRow], summary: Summary) -> dict:
    """The page across experiments: the table, the chart's points, the summary in words."""
    shown = []
    for r in rows:
        words, css = online_verdict(r.online)
        agree, agree_css = agreement_text(r.agrees)
        shown.append({"experiment": r.experiment, "name": r.name, "status": r.status,
                      "finished": r.status in ("stopped", "shipped"),
                      "design": "interleaving" if r.design == "interleaving" else "A/B",
                      "variant": r.variant, "baseline": r.baseline, "variant_label": r.variant_label,
                      "baseline_label": r.baseline_label, "offline": offline_change_text(r.offline),
                      "offline_source": r.offline.source if r.offline and r.offline.comparable else "",
                      "offline_reason": r.offline.reason if r.offline and not r.offline.comparable else "",
                      "online_metric": r.online.metric if r.online else "",
                      "online": online_text(r.online), "verdict": words, "verdict_class": css,
                      "agree": agree, "agree_class": agree_css})
    points = [{"label": f"{r.experiment} · {r.variant}", "x": r.offline.ndcg_relative_change, "y": r.online.value,
               "low": r.online.ci_low, "high": r.online.ci_high, "significant": r.online.significant,
               "interleaving": r.online.kind == "preference_delta"}
              for r in rows if r.paired]
    return {"rows": shown, "points": points, "summary": summary_sentence(rows, summary),
            "lower_is_better": any(r.online is not None and not r.online.higher_is_better for r in rows)}


MIN_FOR_P_VALUE = 10


def summary_sentence(rows: list[OfflineOnlineRow], s: Summary) -> str:
    experiments = len({r.experiment for r in rows})
    if not experiments:
        return "No experiment to compare yet."
    out = (f"{experiments:,} experiment{'s' if experiments != 1 else ''}"
           + (f" ({s.rows:,} treatments)" if s.rows != experiments else "")
           + f"; {s.paired:,} with both a comparable offline NDCG change and an online result")
    if s.directed:
        out += f"; of the {s.directed:,} where both moved, {s.agree:,} agree in direction"
    out += "."
    if s.spearman is not None:
        p = p_text(s.spearman_p)
        # scipy's p-value of ρ is an approximation that means little on a handful of pairs.
        p = (f"p {p}" if p.startswith("<") else f"p = {p}") if s.paired >= MIN_FOR_P_VALUE else "too few for a p-value"
        out += (f" Spearman rank correlation of the offline change with the online result: "
                f"ρ = {s.spearman:+.2f} ({s.paired:,} pairs; {p}).")
    else:
        out += f" A rank correlation needs at least {MIN_FOR_CORRELATION} pairs ({s.paired:,} so far)."
    return out
