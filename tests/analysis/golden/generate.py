"""Writes the golden reports in this folder: representative inputs (per-variant moments,
as the database returns them) and the report document the analysis code builds from
them. tests/analysis/test_report.py rebuilds every report from the stored inputs and
compares: a change to the stored or served document shows up there. `views` holds what
the CSV export and the dashboard's presenters made of each report.

    python -m tests.analysis.golden.generate      (from the repository's root)

Regenerate only when the document is meant to change (and say so in docs/statistics.md).
The inputs are stored, not re-drawn, so the test does not depend on numpy's samplers.
"""

import json
import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from analysis import results as R
from analysis.exports import report_csv
from analysis.report import AnalysisSettings, Report
from analysis.stats.moments import Moments
from dashboard import presenters

HERE = Path(__file__).resolve().parent

# Per-user variables, as sufficient_statistics.plan lays out the built-in metrics:
# post clicks, impressions, saves, engaged (0/1), hides; then pre clicks, impressions, saves, engaged.
CLICKS, IMPRESSIONS, SAVES, ENGAGED, HIDES = range(5)
PRE = (5, 6, 7, 8)
METRICS = [
    dict(key="closeup_ctr", name="Closeup CTR", kind="ratio", direction="higher", role="primary",
         post=[CLICKS, IMPRESSIONS], pre=[PRE[0], PRE[1]]),
    dict(key="hide_rate", name="Hide rate", kind="ratio", direction="lower", role="guardrail",
         post=[HIDES, IMPRESSIONS], pre=[]),
    dict(key="saves_per_user", name="Saves per user", kind="mean", direction="higher", role="secondary",
         post=[SAVES], pre=[PRE[2]]),
    dict(key="engaged_users", name="Engaged users", kind="proportion", direction="higher", role="secondary",
         post=[ENGAGED], pre=[PRE[3]]),
]
SETTINGS = dict(alpha=0.05, correction="holm", cuped=True, sequential_tau=0.02, prior_sd=None,
                minimum_detectable_effect=0.02, segment_by=None)


def users(rng, n, ctr_lift=1.0, impressions=12.0):
    """n users' nine per-user variables (post, then pre)."""
    activity = rng.gamma(2.0, impressions / 2.0, n)
    ctr = rng.beta(2.0, 20.0, n)
    saves_rate = rng.gamma(1.5, 0.2, n)
    columns = []
    for post, lift in ((True, ctr_lift), (False, 1.0)):
        imp = rng.poisson(activity)
        clk = rng.binomial(imp, np.minimum(1.0, ctr * lift))
        sav = rng.poisson(saves_rate * lift)
        columns.append([clk, imp, sav, ((clk + sav) > 0).astype(int)])
        if post:
            columns[-1].append(rng.binomial(imp, 0.01))
    return np.vstack([*columns[0], *columns[1]]).astype(float)


def moments_json(m: Moments, pairs=None) -> dict:
    """As the SQL returns them: products outside the metrics' pairs are nan."""
    products = [[float(x) for x in row] for row in m.products]
    if pairs is not None:
        products = [[x if (i, j) in pairs or (j, i) in pairs else math.nan for j, x in enumerate(row)]
                    for i, row in enumerate(products)]
    return {"n": int(m.n), "sums": [float(x) for x in m.sums], "products": products}


def metric_pairs(metrics):
    pairs = set()
    for m in metrics:
        idx = sorted(m["post"] + m["pre"])
        pairs.update((a, b) for i, a in enumerate(idx) for b in idx[i:])
    return pairs


def daily(rng, variants, days, per_day, lifts, k_post):
    """Cumulative moments of the primary metric's post variables at the end of each day."""
    out = {}
    for v in variants:
        data = np.zeros((9, 0))
        series = []
        for _ in days:
            data = np.hstack([data, users(rng, per_day, lifts.get(v["key"], 1.0))])
            series.append(moments_json(Moments.from_data(data).select(k_post)))
        out[str(v["id"])] = series
    return out


def variants_of(*spec):
    return [dict(id=i + 1, key=key, weight=weight, is_control=i == 0) for i, (key, weight) in enumerate(spec)]


def cases():
    rng = np.random.default_rng(20261201)
    start = date(2026, 11, 20)
    two = variants_of(("control", 50), ("treatment", 50))
    three = variants_of(("control", 34), ("a", 33), ("b", 33))
    days = [(start + timedelta(days=i)).isoformat() for i in range(4)]
    pairs = metric_pairs(METRICS)

    def arms(variants, n, lifts, pairs=None):
        return {str(v["id"]): moments_json(Moments.from_data(users(rng, n, lifts.get(v["key"], 1.0))), pairs)
                for v in variants}

    yield "plain", dict(
        variants=two, metrics=METRICS, settings={**SETTINGS, "cuped": False}, days_running=3.5,
        moments=arms(two, 400, {"treatment": 1.25}),
        series=dict(days=days, by_variant=daily(rng, two, days, 100, {"treatment": 1.25}, [CLICKS, IMPRESSIONS]),
                    source="backfill"),
        segments=None)
    yield "cuped", dict(
        variants=three, metrics=METRICS,
        settings={**SETTINGS, "correction": "bh", "prior_sd": 0.1, "sequential_tau": 0.05,
                  "minimum_detectable_effect": 0.05},
        days_running=6.25, moments=arms(three, 300, {"b": 1.4}, pairs),
        series=dict(days=days[-1:], by_variant=daily(rng, three, days[-1:], 300, {"b": 1.4}, [CLICKS, IMPRESSIONS]),
                    source="incremental"),
        segments=None)
    yield "segmented", dict(
        variants=two, metrics=METRICS, settings={**SETTINGS, "segment_by": "platform"}, days_running=2.0,
        moments=arms(two, 500, {"treatment": 1.1}),
        series=None,
        segments={"ios": arms(two, 250, {"treatment": 1.1}),
                  "android": {"1": moments_json(Moments.from_data(users(rng, 240)))},  # no treatment users
                  "(none)": arms(two, 10, {})})
    empty_series = dict(days=[], by_variant={}, source="backfill")
    yield "no_data", dict(variants=two, metrics=METRICS, settings=SETTINGS, days_running=0.0, moments={},
                          series=empty_series, segments=None)
    yield "single_variant", dict(
        variants=two, metrics=METRICS, settings=SETTINGS, days_running=0.1,
        moments={"1": moments_json(Moments.from_data(users(rng, 40)))},
        series=dict(days=days[:1], by_variant=daily(rng, two[:1], days[:1], 40, {}, [CLICKS, IMPRESSIONS]),
                    source="backfill"),
        segments=None)
    # A ratio whose treatment saw no impressions (value and lift undefined), a pre-period
    # with no impressions in the control (no CUPED covariate there), and a mean with no
    # spread at all (standard error 0).
    dead = users(rng, 60)
    dead[[IMPRESSIONS, CLICKS, HIDES]] = 0.0
    no_pre = users(rng, 60)
    no_pre[[PRE[0], PRE[1]]] = 0.0
    no_pre[SAVES] = 1.0
    dead[SAVES] = 1.0
    yield "failed_ratio", dict(
        variants=two, metrics=METRICS, settings=SETTINGS, days_running=1.0,
        moments={"1": moments_json(Moments.from_data(no_pre)), "2": moments_json(Moments.from_data(dead))},
        series=None, segments=None)
    # No primary metric (no power, no series); a variant weighted 0 that got users (a
    # mismatch on its own); no correction.
    yield "no_primary", dict(
        variants=variants_of(("control", 100), ("holdback", 0)),
        metrics=[{**m, "role": "secondary" if m["role"] == "primary" else m["role"]} for m in METRICS],
        settings={**SETTINGS, "correction": "none"}, days_running=0.0,
        moments=arms(variants_of(("control", 100), ("holdback", 0)), 80, {}), series=None, segments=None)


def _moments(doc) -> Moments:
    return Moments(doc["n"], tuple(doc["sums"]), tuple(tuple(row) for row in doc["products"]))


def report_of(inputs: dict) -> Report:
    """The report the analysis builds from one case's inputs."""
    variants = [R.VariantInfo(**v) for v in inputs["variants"]]
    metrics = [R.MetricInfo(**{**m, "post": tuple(m["post"]), "pre": tuple(m["pre"])}) for m in inputs["metrics"]]
    settings = AnalysisSettings(**inputs["settings"])
    moments = {int(vid): _moments(m) for vid, m in inputs["moments"].items()}
    series = None
    if inputs["series"] is not None:
        s = inputs["series"]
        primary = next(m for m in metrics if m.role == "primary")
        by_variant = {int(vid): [_moments(m) for m in ms] for vid, ms in s["by_variant"].items()}
        days = [date.fromisoformat(d) for d in s["days"]]
        series = R.daily_series(primary, variants, days, by_variant, settings, source=s["source"])
    segments = None
    if inputs["segments"] is not None:
        segments = {seg: {int(vid): _moments(m) for vid, m in per.items()} for seg, per in inputs["segments"].items()}
    return R.build_report("golden", variants, metrics, moments, settings, inputs["days_running"], series, segments)


REPORT_ID, COMPUTED_AT = 7, "2026-11-24 06:15:00+00:00"


def views_of(report: Report) -> dict:
    """What the readers make of a report: the CSV export and the dashboard's tables and charts."""
    out = {"csv": report_csv(report, REPORT_ID, COMPUTED_AT), "primary_summary": presenters.primary_summary(report)}
    for cuped in (False, True):
        for sequential in (False, True):
            toggles = f"cuped={cuped} sequential={sequential}"
            out[f"rows {toggles}"] = [presenters.metric_rows(m, cuped, sequential) for m in report.metrics]
            out[f"forest {toggles}"] = presenters.forest_data(report, cuped, sequential)
    for sequential in (False, True):
        out[f"series sequential={sequential}"] = presenters.series_data(report, sequential)
    return out


def main():
    for name, inputs in cases():
        inputs = json.loads(json.dumps(inputs))  # exactly what the test will read back
        report = json.loads(json.dumps(report_of(inputs).to_json()))
        doc = {"case": name, "inputs": inputs, "report": report, "views": views_of(Report.from_json(report))}
        (HERE / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {name}.json")


if __name__ == "__main__":
    main()
