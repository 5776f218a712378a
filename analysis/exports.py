"""A report as CSV: one row per metric and variant (the control's row has no lift).

An interleaving experiment's preference comes first, as the metric
"interleaving_preference" with a row per team: `users` are the users with a credited
engagement, `mean` the share of them preferring the team, so the treatment's
`absolute_lift` (Δ) is the difference of the two means, with its interval and test."""

import csv
import io

from analysis.report import Comparison, InterleavingResult, MetricResult, Report, SampleRatioCheck

COLUMNS = [
    "experiment", "report_id", "computed_at", "segment", "metric", "kind", "role", "direction", "variant",
    "baseline", "users", "mean", "std_error", "cuped_mean", "absolute_lift", "absolute_ci_low",
    "absolute_ci_high", "relative_lift", "ci_low", "ci_high", "p_value", "p_value_adjusted", "significant",
    "enough_data", "more_users_needed", "chance_to_beat_control", "sequential_p_value", "sequential_ci_low",
    "sequential_ci_high",
    "cuped_relative_lift", "cuped_ci_low", "cuped_ci_high", "cuped_p_value", "cuped_variance_reduction",
    "srm_p_value", "srm_flagged",
]


def _comparison_columns(c: Comparison | None) -> dict:
    if c is None:  # the control
        return {}
    seq, cup = c.sequential, c.cuped
    return {
        "baseline": c.baseline, "absolute_lift": c.absolute_lift, "absolute_ci_low": c.absolute_ci_low,
        "absolute_ci_high": c.absolute_ci_high, "relative_lift": c.relative_lift, "ci_low": c.ci_low,
        "ci_high": c.ci_high, "p_value": c.p_value, "p_value_adjusted": c.p_value_adjusted,
        "significant": c.significant, "enough_data": c.enough_data,
        "more_users_needed": c.minimum_data.more_users if c.minimum_data and not c.enough_data else None,
        "chance_to_beat_control": c.chance_to_beat_control,
        "sequential_p_value": seq.p_value, "sequential_ci_low": seq.ci_low, "sequential_ci_high": seq.ci_high,
        **({"cuped_relative_lift": cup.relative_lift, "cuped_ci_low": cup.ci_low, "cuped_ci_high": cup.ci_high,
            "cuped_p_value": cup.p_value, "cuped_variance_reduction": cup.variance_reduction} if cup else {}),
    }


def _rows(run: dict, metrics: tuple[MetricResult, ...], segment: str | None, srm: SampleRatioCheck):
    for result in metrics:
        comparisons = {c.variant: c for c in result.comparisons}
        for v in result.variants:
            yield {
                **run, "segment": segment, "metric": result.metric, "kind": result.kind, "role": result.role,
                "direction": result.direction, "variant": v.variant, "users": v.users, "mean": v.mean,
                "std_error": v.std_error, "cuped_mean": v.cuped_mean,
                **_comparison_columns(comparisons.get(v.variant)),
                "srm_p_value": srm.p_value, "srm_flagged": srm.flagged,
            }


def _preference_rows(run: dict, block: InterleavingResult, srm: SampleRatioCheck):
    for team in (block.control, block.treatment):
        share = block.wins.get(team, 0) / block.users if block.users else None
        row = {**run, "metric": "interleaving_preference", "kind": "interleaving", "role": "primary",
               "direction": "higher", "variant": team, "users": block.users, "mean": share,
               "srm_p_value": srm.p_value, "srm_flagged": srm.flagged}
        if team == block.treatment:
            row.update({"baseline": block.control, "absolute_lift": block.delta, "absolute_ci_low": block.ci_low,
                        "absolute_ci_high": block.ci_high, "p_value": block.p_value, "significant": block.significant,
                        "enough_data": block.enough_data,
                        "more_users_needed": block.more_users if not block.enough_data else None})
        yield row


# The header says each number's unit; fractions are of 1 (0.05 is +5%), as in the API.
UNITS = {
    "mean": "metric units", "std_error": "metric units", "cuped_mean": "metric units",
    "absolute_lift": "metric units", "absolute_ci_low": "metric units", "absolute_ci_high": "metric units",
    "relative_lift": "fraction", "ci_low": "fraction", "ci_high": "fraction",
    "chance_to_beat_control": "probability", "sequential_ci_low": "fraction", "sequential_ci_high": "fraction",
    "cuped_relative_lift": "fraction", "cuped_ci_low": "fraction", "cuped_ci_high": "fraction",
    "cuped_variance_reduction": "fraction",
}
SIGNIFICANT_DIGITS = 6


def _header(column: str) -> str:
    return f"{column} ({UNITS[column]})" if column in UNITS else column


def _rounded(value):
    # Six significant digits: the statistics are not more precise than that, and a person
    # opening the file should not read 16-digit floats. Integers (users) stay whole.
    if isinstance(value, float) and not isinstance(value, bool):
        return f"{value:.{SIGNIFICANT_DIGITS}g}"
    return value


def report_csv(report: Report, report_id=None, computed_at=None) -> str:
    out = io.StringIO()
    # A column a row leaves out (the control's lifts, a metric without CUPED) is empty.
    writer = csv.writer(out)
    writer.writerow([_header(c) for c in COLUMNS])
    run = {"experiment": report.experiment, "report_id": report_id, "computed_at": computed_at}
    rows = list(_preference_rows(run, report.interleaving, report.srm)) if report.interleaving else []
    rows += list(_rows(run, report.metrics, None, report.srm))
    for seg in report.segments or ():
        rows += list(_rows(run, seg.metrics, seg.segment, seg.srm))
    for row in rows:
        writer.writerow([_rounded(row.get(c)) if row.get(c) is not None else "" for c in COLUMNS])
    return out.getvalue()
