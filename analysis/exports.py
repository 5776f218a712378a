"""A report as CSV: one row per metric and variant (the control's row has no lift)."""

import csv
import io

COLUMNS = [
    "experiment", "report_id", "computed_at", "segment", "metric", "kind", "role", "direction", "variant",
    "baseline", "users", "mean", "std_error", "cuped_mean", "absolute_lift", "absolute_ci_low",
    "absolute_ci_high", "relative_lift", "ci_low", "ci_high", "p_value", "p_value_adjusted", "significant",
    "chance_to_beat_control", "sequential_p_value", "sequential_ci_low", "sequential_ci_high",
    "cuped_relative_lift", "cuped_ci_low", "cuped_ci_high", "cuped_p_value", "cuped_variance_reduction",
    "srm_p_value", "srm_flagged",
]


def _rows(body: dict, metrics: list[dict], segment: str | None, srm: dict):
    for block in metrics:
        comparisons = {c["variant"]: c for c in block["comparisons"]}
        for v in block["variants"]:
            c = comparisons.get(v["variant"], {})
            seq, cup = c.get("sequential") or {}, c.get("cuped") or {}
            yield {
                "experiment": body.get("experiment"), "report_id": body.get("report_id"),
                "computed_at": body.get("computed_at"), "segment": segment, "metric": block["metric"],
                "kind": block["kind"], "role": block["role"], "direction": block["direction"],
                "variant": v["variant"], "baseline": c.get("baseline"), "users": v["users"], "mean": v["mean"],
                "std_error": v.get("std_error"), "cuped_mean": v.get("cuped_mean"),
                **{k: c.get(k) for k in ("absolute_lift", "absolute_ci_low", "absolute_ci_high", "relative_lift",
                                         "ci_low", "ci_high", "p_value", "p_value_adjusted", "significant",
                                         "chance_to_beat_control")},
                "sequential_p_value": seq.get("p_value"), "sequential_ci_low": seq.get("ci_low"),
                "sequential_ci_high": seq.get("ci_high"), "cuped_relative_lift": cup.get("relative_lift"),
                "cuped_ci_low": cup.get("ci_low"), "cuped_ci_high": cup.get("ci_high"),
                "cuped_p_value": cup.get("p_value"), "cuped_variance_reduction": cup.get("variance_reduction"),
                "srm_p_value": srm.get("p_value"), "srm_flagged": srm.get("flagged"),
            }


def report_csv(body: dict) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in _rows(body, body.get("metrics") or [], None, body.get("srm") or {}):
        writer.writerow(row)
    for seg in body.get("segments") or []:
        for row in _rows(body, seg["metrics"], seg["segment"], seg.get("srm") or {}):
            writer.writerow(row)
    return out.getvalue()
