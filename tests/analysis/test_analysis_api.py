"""Results, analyze, reports, CSV and power through the API: every number a PM reads
checked against scipy/statsmodels on the raw per-user data it came from."""

import csv
import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from scipy import stats
from statsmodels.stats import proportion as sm_proportion

from analysis.models import AnalysisReport, Metric
from tests import processes
from tests.analysis.conftest import add_events, add_exposures, clear_events, make_experiment
from tests.conftest import as_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(rng):
    """An experiment with a control and two treatments; treatment b clicks and saves more."""
    now = datetime.now(UTC)
    exp, variants = make_experiment("default", "closeup-ranker", weights=(34, 33, 33),
                                    names=["control", "a", "b"], started_at=now - timedelta(days=3))
    exposures, events, per_user = [], [], {}
    for i in range(900):
        v = variants[i % 3]
        t0 = now - timedelta(hours=float(rng.uniform(1, 70)))
        user = f"user-{i}"
        exposures.append((v, user, t0, {"platform": ["ios", "android"][i % 2]}, False))
        boost = 1.6 if v.key == "b" else 1.0
        impressions = int(rng.poisson(12))
        clicks = int(rng.binomial(impressions, min(1.0, 0.08 * boost)))
        saves = int(rng.poisson(0.3 * boost))
        span = (now - t0).total_seconds() - 60
        for typ, count in (("impression", impressions), ("click", clicks), ("save", saves)):
            events += [(user, typ, t0 + timedelta(seconds=float(rng.uniform(0, span)))) for _ in range(count)]
        per_user[user] = (v.key, impressions, clicks, saves)
    add_exposures("default", exp, exposures)
    add_events("default", events)
    # The numbers are checked against scipy at sizes (150 users per arm and segment) the
    # default minimum-data rule would hold back: test_minimum_data.py checks the rule.
    Metric.objects.update(min_users_per_variant=2, min_events_per_variant=0)
    yield exp, per_user
    clear_events("default")


def _block(body, metric):
    return next(b for b in body["metrics"] if b["metric"] == metric)


def _comparison(block, variant):
    return next(c for c in block["comparisons"] if c["variant"] == variant)


def test_analyze_then_results_match_scipy_on_the_raw_per_user_data(world, experimenter, viewer):
    exp, per_user = world
    r = as_user(experimenter).post(f"/api/v1/experiments/{exp.key}/analyze", {}, format="json")
    assert r.status_code == 201, r.content
    body = as_user(viewer).get(f"/api/v1/experiments/{exp.key}/results").json()
    assert body["report_id"] == r.json()["report_id"] and body["computed_at"]
    assert body["srm"]["flagged"] is False and body["srm"]["observed"] == {"control": 300, "a": 300, "b": 300}

    raw = {k: np.array([(imp, clk, sav) for v, imp, clk, sav in per_user.values() if v == k], dtype=float)
           for k in ("control", "a", "b")}
    # Ratios are not capped by default: CTR is the raw events' own. Saves per user (a mean)
    # is capped at the 99.9th percentile of every user's count above 0.
    pooled = np.vstack(list(raw.values()))
    save_cap = float(np.percentile(pooled[:, 2][pooled[:, 2] > 0], 99.9))
    for x in raw.values():
        x[:, 2] = np.minimum(x[:, 2], save_cap)
    ctr = _block(body, "closeup_ctr")
    assert ctr["role"] == "primary" and "cap" not in ctr
    assert _block(body, "saves_per_user")["cap"]["value"] == pytest.approx(save_cap, rel=1e-12)
    for row in ctr["variants"]:
        x = raw[row["variant"]]
        assert row["users"] == 300
        assert row["mean"] == pytest.approx(x[:, 1].sum() / x[:, 0].sum(), rel=1e-12)

    saves = _block(body, "saves_per_user")
    c = _comparison(saves, "b")
    ref = stats.ttest_ind(raw["b"][:, 2], raw["control"][:, 2], equal_var=False)
    assert c["p_value"] == pytest.approx(ref.pvalue, abs=1e-6)
    assert c["relative_lift"] == pytest.approx(raw["b"][:, 2].mean() / raw["control"][:, 2].mean() - 1, rel=1e-9)

    engaged = _block(body, "engaged_users")
    e = _comparison(engaged, "a")
    ea, ec = (raw["a"][:, 1:].sum(axis=1) > 0), (raw["control"][:, 1:].sum(axis=1) > 0)
    ref = sm_proportion.test_proportions_2indep(ea.sum(), ea.size, ec.sum(), ec.size, method="wald",
                                                correction=False)
    assert e["p_value"] == pytest.approx(ref.pvalue, abs=1e-6)

    # The clear effect of b on CTR is found; contract fields are all there.
    b = _comparison(ctr, "b")
    assert b["significant"] is True and b["ci_low"] > 0 and b["relative_lift"] > 0.3
    for field in ("variant", "baseline", "absolute_lift", "relative_lift", "ci_low", "ci_high", "p_value",
                  "significant", "p_value_adjusted", "chance_to_beat_control", "sequential"):
        assert field in b
    assert b["chance_to_beat_control"] > 0.99
    assert b["p_value_adjusted"] >= b["p_value"]  # Holm across the two treatments
    assert _block(body, "hide_rate")["role"] == "guardrail"
    # The primary metric's daily series ends at today's cumulative numbers.
    last = body["series"]["days"][-1]
    assert {v["variant"]: v["users"] for v in last["variants"]} == {"control": 300, "a": 300, "b": 300}
    assert body["power"]["metric"] == "closeup_ctr" and body["power"]["users_per_variant"] > 0


def test_segmented_analysis_splits_by_platform_and_corrects_for_the_segments(world, experimenter):
    exp, _ = world
    r = as_user(experimenter).post(f"/api/v1/experiments/{exp.key}/analyze", {"segment_by": "platform"},
                                   format="json")
    assert r.status_code == 201
    segments = r.json()["segments"]
    assert {s["segment"] for s in segments} == {"ios", "android"}
    assert sum(s["users"] for s in segments) == 900
    for s in segments:
        for c in s["metrics"][0]["comparisons"]:
            assert c["p_value_adjusted"] >= c["p_value"]
    bad = as_user(experimenter).post(f"/api/v1/experiments/{exp.key}/analyze", {"segment_by": "x'; drop"},
                                     format="json")
    assert bad.status_code == 400 and "segment_by" in bad.json()


def test_csv_download_has_a_row_per_metric_and_variant(world, experimenter, viewer):
    exp, _ = world
    as_user(experimenter).post(f"/api/v1/experiments/{exp.key}/analyze", {}, format="json")
    r = as_user(viewer).get(f"/api/v1/experiments/{exp.key}/results?format=csv")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    assert "attachment" in r["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode())))
    assert len(rows) == Metric.objects.count() * 3
    ctr_b = next(x for x in rows if x["metric"] == "closeup_ctr" and x["variant"] == "b")
    body = as_user(viewer).get(f"/api/v1/experiments/{exp.key}/results").json()
    # Rounded to six significant digits, units in the header.
    assert float(ctr_b["relative_lift (fraction)"]) == pytest.approx(_comparison(_block(body, "closeup_ctr"), "b")
                                                                     ["relative_lift"], rel=1e-5)
    numbers = [v for row in rows for v in row.values() if v and v.lstrip("-").replace(".", "", 1).isdigit()]
    assert numbers and all(len(v.lstrip("-").replace(".", "").lstrip("0")) <= 6 for v in numbers), numbers
    j = as_user(viewer).get(f"/api/v1/experiments/{exp.key}/results?format=json")
    assert j.status_code == 200 and "attachment" in j["Content-Disposition"]


def test_a_failed_run_is_recorded_with_its_reason_and_never_replaces_the_last_good_report(world, experimenter,
                                                                                          viewer):
    exp, _ = world
    client = as_user(experimenter)
    good = client.post(f"/api/v1/experiments/{exp.key}/analyze", {}, format="json").json()
    # A metric definition the database cannot compute (edited in past the validation).
    Metric.objects.create(key="purchases", name="Purchases", kind="mean", numerator_types=["purchase"])
    r = client.post(f"/api/v1/experiments/{exp.key}/analyze", {}, format="json")
    assert r.status_code == 422 and "purchase" in r.json()["error"]
    results = as_user(viewer).get(f"/api/v1/experiments/{exp.key}/results").json()
    assert results["report_id"] == good["report_id"]
    assert "purchase" in results["latest_failure"]["error"]
    listed = as_user(viewer).get(f"/api/v1/experiments/{exp.key}/reports").json()
    assert [x["status"] for x in listed] == ["failed", "succeeded"]
    assert AnalysisReport.objects.get(pk=listed[0]["id"]).results is None


def test_an_experiment_with_no_exposures_yet_reports_empty_numbers(experimenter):
    exp, _ = make_experiment("default", "fresh")
    r = as_user(experimenter).post(f"/api/v1/experiments/{exp.key}/analyze", {}, format="json")
    assert r.status_code == 201
    body = r.json()
    assert body["users"] == 0 and body["srm"]["p_value"] is None and body["srm"]["flagged"] is False
    ctr = _block(body, "closeup_ctr")
    assert all(v["users"] == 0 for v in ctr["variants"])
    assert ctr["comparisons"][0]["p_value"] is None and ctr["comparisons"][0]["significant"] is False


def test_results_before_any_analysis_is_a_404_that_says_what_to_do(viewer):
    exp, _ = make_experiment("default", "unanalysed")
    r = as_user(viewer).get(f"/api/v1/experiments/{exp.key}/results")
    assert r.status_code == 404 and "analyze" in r.json()["detail"]


def test_sample_ratio_mismatch_is_flagged(experimenter):
    exp, (control, treatment) = make_experiment("default", "lossy")
    now = datetime.now(UTC)
    add_exposures("default", exp, [(control, f"c{i}", now - timedelta(hours=1), {}, False) for i in range(1_000)]
                  + [(treatment, f"t{i}", now - timedelta(hours=1), {}, False) for i in range(850)])
    body = as_user(experimenter).post(f"/api/v1/experiments/{exp.key}/analyze", {}, format="json").json()
    assert body["srm"]["flagged"] is True and body["srm"]["p_value"] < 0.001
    assert body["srm"]["expected"] == {"control": 925.0, "treatment1": 925.0}


def test_roles_and_credentials(world, viewer, key_client, api_client):
    exp, _ = world
    assert as_user(viewer).post(f"/api/v1/experiments/{exp.key}/analyze", {}, format="json").status_code == 403
    assert key_client.get(f"/api/v1/experiments/{exp.key}/results").status_code in (401, 403)
    assert api_client.get(f"/api/v1/experiments/{exp.key}/results").status_code in (401, 403)
    assert api_client.post(f"/api/v1/experiments/{exp.key}/analyze").status_code in (401, 403)
    assert as_user(viewer).get("/api/v1/experiments/nope/results").status_code == 404


def test_metrics_are_built_in_and_new_ones_are_validated(experimenter, viewer):
    keys = {m["key"] for m in as_user(viewer).get("/api/v1/metrics").json()}
    assert keys == {"closeup_ctr", "save_rate", "engaged_users", "saves_per_user", "closeups_per_user", "hide_rate"}
    hide = as_user(viewer).get("/api/v1/metrics/hide_rate").json()
    assert hide["is_guardrail"] and hide["direction"] == "lower" and hide["kind"] == "ratio"
    bad = as_user(experimenter).post("/api/v1/metrics", {"key": "r", "name": "R", "kind": "ratio",
                                                          "numerator_types": ["click"]}, format="json")
    assert bad.status_code == 400 and "denominator_types" in bad.json()
    bad = as_user(experimenter).post("/api/v1/metrics", {"key": "r", "name": "R", "kind": "mean",
                                                          "numerator_types": ["purchase"]}, format="json")
    assert bad.status_code == 400 and "numerator_types" in bad.json()
    ok = as_user(experimenter).post("/api/v1/metrics", {"key": "clicks_per_user", "name": "Clicks per user",
                                                         "kind": "mean", "numerator_types": ["click"]}, format="json")
    assert ok.status_code == 201
    assert as_user(viewer).post("/api/v1/metrics", {}, format="json").status_code == 403


def test_an_experiment_must_name_metrics_that_exist(experimenter):
    from experiments import services

    layer = services.create_layer(key="l1", name="L1")
    r = as_user(experimenter).post("/api/v1/experiments", {
        "key": "m", "name": "M", "layer": layer.key, "primary_metric": "revenue", "guardrail_metrics": ["nope"],
        "variants": [{"key": "control", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}},
                     {"key": "t", "weight": 50, "recommender": {"name": "popularity"}}],
    }, format="json")
    assert r.status_code == 400
    assert "primary_metric" in r.json() and "guardrail_metrics" in r.json()


def test_power_endpoint_uses_the_observed_baseline(world, experimenter):
    exp, _ = world
    client = as_user(experimenter)
    assert client.get(f"/api/v1/experiments/{exp.key}/power").status_code == 400  # no data yet
    client.post(f"/api/v1/experiments/{exp.key}/analyze", {}, format="json")
    small = client.get(f"/api/v1/experiments/{exp.key}/power?mde=0.10").json()
    large = client.get(f"/api/v1/experiments/{exp.key}/power?mde=0.05").json()
    # Halving the effect quadruples the sample.
    assert large["users_per_variant"] == pytest.approx(4 * small["users_per_variant"], rel=0.01)
    assert small["days_needed"] > 0
    assert client.get(f"/api/v1/experiments/{exp.key}/power?mde=-1").status_code == 400


def test_analyze_command_prints_the_table_and_fails_in_one_line_for_an_unknown_key(world, capsys):
    exp, _ = world
    call_command("analyze", exp.key)
    out = capsys.readouterr().out
    assert "closeup_ctr" in out and "SRM p" in out
    assert AnalysisReport.objects.filter(experiment=exp, trigger="manual", status="succeeded").count() == 1
    with pytest.raises(CommandError, match="no experiment"):
        call_command("analyze", "missing")


def test_analyze_command_exits_non_zero_with_one_line():
    proc = subprocess.run([sys.executable, "manage.py", "analyze", "no-such-experiment"], capture_output=True,
                          text=True, timeout=120, env=processes.process_env())
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == "CommandError: no experiment with key 'no-such-experiment'"


def test_beat_schedules_for_hourly_and_daily_analysis_exist():
    from django_celery_beat.models import PeriodicTask

    tasks = {t.name: t for t in PeriodicTask.objects.filter(task="analysis.tasks.analyze_running_experiments")}
    assert len(tasks) == 2
    hourly = next(t for t in tasks.values() if t.interval_id)
    assert (hourly.interval.every, hourly.interval.period) == (1, "hours")
    daily = next(t for t in tasks.values() if t.crontab_id)
    assert daily.crontab.hour == "6" and '"daily"' in daily.kwargs


def test_the_daily_series_carries_past_days_over_and_matches_a_full_backfill(world, experimenter):
    exp, _ = world
    client = as_user(experimenter)
    first = client.post(f"/api/v1/experiments/{exp.key}/analyze", {}, format="json").json()
    assert first["series"]["source"] == "backfill" and len(first["series"]["days"]) >= 3
    second = client.post(f"/api/v1/experiments/{exp.key}/analyze", {}, format="json").json()
    assert second["series"]["source"] == "incremental"
    full = client.post(f"/api/v1/experiments/{exp.key}/analyze", {"backfill_series": True}, format="json").json()
    assert full["series"]["source"] == "backfill"
    # With no new events, carrying over past days and computing today from this run's
    # moments gives the same series as recomputing every day.
    assert [d["date"] for d in second["series"]["days"]] == [d["date"] for d in full["series"]["days"]]
    for a, b in zip(second["series"]["days"], full["series"]["days"], strict=True):
        for va, vb in zip(a["variants"], b["variants"], strict=True):
            assert va["users"] == vb["users"]
            # A day whose users have no impressions yet has no mean, in both.
            assert (va["mean"] is None) == (vb["mean"] is None)
            if vb["mean"] is not None:
                assert va["mean"] == pytest.approx(vb["mean"], rel=1e-12)
        for ca, cb in zip(a["comparisons"], b["comparisons"], strict=True):
            # A day whose arms have no variance yet has no interval, in both.
            for bound in ("ci_low", "ci_high"):
                assert (ca[bound] is None) == (cb[bound] is None)
                if cb[bound] is not None:
                    assert ca[bound] == pytest.approx(cb[bound], rel=1e-9)
