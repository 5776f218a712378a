"""Capping (winsorization) in the SQL: the caps and the capped moments against numpy on
the raw rows, on every database of the run; and what the report says of it."""

from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from analysis.stats.moments import Moments
from analysis.sufficient_statistics import Variable, daily_moments, plan, product_pairs, variant_moments
from analysis.validation import winsorize
from tests.analysis.conftest import ALIASES, add_events, add_exposures, clear_events, make_experiment
from tests.analysis.test_sufficient_statistics import _events_by_user, _metric_specs, _reference_value, _world

pytestmark = pytest.mark.django_db(databases=ALIASES)


def _heavy_users(alias, truth, as_of):
    """A few power users, so that a cap has something to cut."""
    events = []
    for n, user in enumerate(sorted(u for u, (_, _, forced, _) in truth.items() if not forced)[:4]):
        t0 = truth[user][1]
        events += [(user, typ, min(t0 + timedelta(minutes=1 + k), as_of)) for typ in ("click", "impression", "save")
                   for k in range(30 * (n + 1))]
    add_events(alias, events)
    return events


@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.parametrize("percentile", [90.0, 99.9])
def test_caps_and_capped_moments_equal_numpy_on_the_raw_rows(alias, rng, percentile):
    as_of = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    try:
        exp, variants, truth, events = _world(alias, rng, as_of)
        events = events + _heavy_users(alias, truth, as_of)
        specs = [replace(s, cap_percentile=percentile) for s in _metric_specs(window_hours=6)]
        variables, layouts = plan(specs, cuped=True)
        pairs = product_pairs(layouts)
        got = variant_moments(exp.id, variables, pairs, as_of, using=alias)

        by_user = _events_by_user(events)
        rows, arms = [], []
        for user, (variant_id, t0, forced, _) in truth.items():
            if not forced:
                rows.append([_reference_value(v, t0, by_user[user], as_of) for v in variables])
                arms.append(variant_id)
        values, arms = np.array(rows, dtype=float), np.array(arms)
        cut = 0
        for i, v in enumerate(variables):
            if v.any:
                assert i not in got.caps  # 0/1 values are never capped
                continue
            column = values[:, i]
            cap = float(np.percentile(column[column > 0], percentile))  # numpy's linear: percentile_cont's
            assert got.caps[i] == pytest.approx(cap, rel=1e-12)
            # The validation's numpy winsorization is the same cap.
            assert winsorize([column[arms == a.id] for a in variants], percentile)[1] == pytest.approx(cap)
            cut += int(np.sum(column > cap))
            values[:, i] = np.minimum(column, cap)
        assert cut > 0  # the caps did cut something
        for a in variants:
            expected = Moments.from_data(values[arms == a.id].T)
            m = got[(a.id, None)]
            assert m.n == expected.n
            assert m.sums == pytest.approx(expected.sums, abs=1e-9)
            for x, y in pairs:
                assert m.products[x][y] == pytest.approx(expected.products[x][y], abs=1e-9)

        # The backfilled daily series, capped at the same caps, ends where the report stands.
        post = layouts["closeup_ctr"].post
        daily = daily_moments(exp.id, [variables[i] for i in post], as_of, using=alias,
                              caps={j: got.caps.get(i) for j, i in enumerate(post)})
        for a in variants:
            last, whole = daily.by_variant[a.id][-1], got[(a.id, None)].select(post)
            assert last.n == whole.n
            assert last.sums == pytest.approx(whole.sums, abs=1e-9)
            assert np.allclose(last.products, whole.products, atol=1e-9)
    finally:
        clear_events(alias)


@pytest.mark.parametrize("alias", ALIASES)
def test_no_user_with_any_such_event_leaves_the_cap_null_and_the_values_alone(alias):
    as_of = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    exp, variants = make_experiment(alias, "no-events")
    add_exposures(alias, exp, [(variants[i % 2], f"q{i}", as_of - timedelta(hours=3), {}, False) for i in range(10)])
    try:
        add_events(alias, [("q0", "click", as_of - timedelta(hours=2))])
        hides = Variable(("hide",), False, cap_percentile=99.9)
        clicks = Variable(("click",), False, cap_percentile=99.9)
        got = variant_moments(exp.id, [hides, clicks], [(0, 0), (1, 1)], as_of, using=alias)
        assert got.caps == {0: None, 1: 1.0}
        assert sum(m.n for m in got.values()) == 10
        assert [got[(v.id, None)].sums for v in variants] == [(0.0, 1.0), (0.0, 0.0)]
    finally:
        clear_events(alias)


def test_a_cap_percentile_outside_0_to_100_is_refused_and_any_is_never_capped():
    with pytest.raises(ValueError):
        Variable(("click",), False, cap_percentile=100.0)
    assert Variable(("click",), True, cap_percentile=99.9).cap_percentile is None
    specs = defaultdict(list)
    variables, layouts = plan([replace(s, cap_percentile=99.9) for s in _metric_specs()], cuped=False)
    for v in variables:
        specs[v.any].append(v.cap_percentile)
    assert set(specs[True]) == {None} and set(specs[False]) == {99.9}


@pytest.mark.django_db
def test_an_analysis_reports_each_metrics_cap_and_each_guardrails_test(experimenter):
    from analysis.models import Metric
    from analysis.services import run_analysis
    from experiments import services

    Metric.objects.filter(key="closeup_ctr").update(cap_percentile=99.9)  # ratios are capped when asked
    layer = services.create_layer(key="layer-cap", name="Layer")
    e = services.create_experiment(actor=experimenter, layer=layer, key="cap", name="Cap", hypothesis="h", variants=[
        {"key": "control", "weight": 50, "is_control": True, "recommender": {"name": "popularity", "params": {}}},
        {"key": "treatment", "weight": 50, "is_control": False, "recommender": {"name": "popularity", "params": {}}},
    ], primary_metric="closeup_ctr", guardrail_metrics=["hide_rate"])
    services.transition(e, "start", actor=experimenter)
    now = datetime.now(UTC).replace(microsecond=0)
    control, treatment = list(e.variants.all())
    add_exposures("default", e, [((control, treatment)[i % 2], f"k{i}", now - timedelta(hours=3), {}, False)
                                 for i in range(60)])
    try:
        add_events("default", [(f"k{i}", typ, now - timedelta(hours=2)) for i in range(60)
                               for typ in ("impression",) * (1 + i % 7) + ("click",) * (i % 3) + ("hide",) * (i % 2)]
                   + [("k0", "impression", now - timedelta(hours=1))] * 500)
        doc = run_analysis(e).results
    finally:
        clear_events("default")
    by_key = {m["metric"]: m for m in doc["metrics"]}
    ctr = by_key["closeup_ctr"]["cap"]
    assert ctr["percentile"] == 99.9 and ctr["value"] == pytest.approx(2.0)  # clicks: 1 or 2 per clicker
    assert ctr["denominator_value"] < 501  # the power user's 501 impressions are cut
    assert "cap" not in by_key["engaged_users"]  # 0/1: nothing to cap
    guard = by_key["hide_rate"]["comparisons"][0]["guardrail"]
    assert guard["margin"] == 0.02 and guard["verdict"] in ("within_margin", "regressed", "inconclusive")


@pytest.mark.django_db
def test_the_metric_api_takes_a_cap_and_a_margin_and_refuses_bad_ones_with_field_messages(experimenter, viewer):
    from tests.conftest import as_user

    hide = as_user(viewer).get("/api/v1/metrics/hide_rate").json()
    # Ratios are not capped by default (their numbers stay the raw events' own); means are.
    assert hide["cap_percentile"] is None and hide["guardrail_margin"] == 0.02
    assert as_user(viewer).get("/api/v1/metrics/saves_per_user").json()["cap_percentile"] == 99.9
    base = {"key": "clicks", "name": "Clicks", "kind": "mean", "numerator_types": ["click"]}
    for field, value in (("cap_percentile", 100), ("cap_percentile", 10), ("cap_percentile", "nan"),
                         ("cap_percentile", "x"), ("guardrail_margin", -0.1), ("guardrail_margin", 2),
                         ("guardrail_margin", "inf")):
        r = as_user(experimenter).post("/api/v1/metrics", {**base, field: value}, format="json")
        assert r.status_code == 400 and field in r.json(), (field, value, r.content)
    ok = as_user(experimenter).post("/api/v1/metrics", {**base, "cap_percentile": None, "guardrail_margin": 0.05},
                                    format="json")
    assert ok.status_code == 201 and ok.json()["cap_percentile"] is None and ok.json()["guardrail_margin"] == 0.05
    default = as_user(experimenter).post("/api/v1/metrics", {**base, "key": "clicks2"}, format="json")
    assert default.status_code == 201 and default.json()["cap_percentile"] == 99.9


def test_by_simulation_capping_gains_power_on_heavy_tails_and_keeps_the_false_positive_rate(rng):
    from analysis import validation as V

    power = V.capping_runs(rng, 400, V.HEAVY_N, V.HEAVY_LIFT)
    assert power["capped"] > power["plain"] + 0.02
    aa = V.capping_runs(rng, 800, V.HEAVY_N, 0.0)
    assert 0.025 <= aa["capped"] <= 0.075
