"""The SQL that reduces exposures and events to per-variant moments, against a plain
Python computation over the same rows, on every database of the run."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from analysis.builtin_metrics import BUILTIN_METRICS
from analysis.stats.moments import Moments
from analysis.sufficient_statistics import (
    MetricSpec,
    Variable,
    Window,
    daily_moments,
    plan,
    product_pairs,
    variant_moments,
)
from tests.analysis.conftest import ALIASES, add_events, add_exposures, clear_events, make_experiment

pytestmark = pytest.mark.django_db(databases=ALIASES)

TYPES = ["impression", "click", "save", "closeup", "hide"]


def _metric_specs(window_hours=None):
    specs = []
    for m in BUILTIN_METRICS:
        specs.append(MetricSpec(m["key"], m["kind"], tuple(m["numerator_types"]), tuple(m["denominator_types"]),
                                m["aggregation"], window_hours if m["key"] == "saves_per_user" else None, 7))
    return specs


def _world(alias, rng, as_of):
    """Three variants, forced users, users of another experiment, users never exposed,
    and events before, at and after each user's first exposure."""
    exp, variants = make_experiment(alias, "sql-check", weights=(40, 30, 30))
    other, other_variants = make_experiment(alias, "other", weights=(50, 50))
    exposures, events, truth = [], [], {}
    for i in range(240):
        user = f"u{i}"
        v = variants[i % 3]
        t0 = as_of - timedelta(days=float(rng.uniform(0.05, 2.5)))
        forced = i % 37 == 0
        platform = ["ios", "android", "web"][i % 3 if i % 5 else 0]
        exposures.append((v, user, t0, {"platform": platform}, forced))
        truth[user] = (v.id, t0, forced, platform)
        for _ in range(int(rng.poisson(6))):
            # Mostly after exposure, some in the pre-period, some before it, a few after as_of.
            offset = float(rng.choice([rng.uniform(0, 30), -rng.uniform(0, 6.5 * 24), -rng.uniform(7.2 * 24, 9 * 24)],
                                      p=[0.7, 0.25, 0.05]))
            t = t0 + timedelta(hours=offset)
            if t > as_of + timedelta(hours=2):
                continue
            events.append((user, str(rng.choice(TYPES, p=[0.6, 0.15, 0.1, 0.1, 0.05])), t))
        if i % 11 == 0:
            events.append((user, "click", t0))  # exactly at the first exposure: counts
            # Just before: pre-period (SQLite compares times to the millisecond, PostgreSQL to the µs).
            events.append((user, "save", t0 - timedelta(milliseconds=1)))
        if i % 13 == 0:
            events.append((user, "click", as_of + timedelta(minutes=5)))  # after the analysis time
    add_exposures(alias, exp, exposures)
    add_exposures(alias, other, [(other_variants[0], f"u{i}", as_of - timedelta(days=1), {}, False) for i in range(50)])
    events += [(f"stranger{i}", "click", as_of - timedelta(hours=1)) for i in range(30)]  # never exposed
    late_user = "late"
    add_exposures(alias, exp, [(variants[0], late_user, as_of + timedelta(minutes=1), {}, False)])
    events.append((late_user, "click", as_of + timedelta(minutes=2)))
    add_events(alias, events)
    return exp, variants, truth, events


def _events_by_user(events) -> dict[str, list]:
    by_user = defaultdict(list)
    for user, typ, t in events:
        by_user[user].append((typ, t))
    return by_user


def _reference_value(var: Variable, t0, user_events, as_of):
    count = 0
    for typ, t in user_events:
        if typ not in var.types or t > as_of:
            continue
        if var.pre_days:
            ok = t0 - timedelta(days=var.pre_days) <= t < t0
        else:
            ok = t >= t0 and (var.window_hours is None or t < t0 + timedelta(hours=var.window_hours))
        count += ok
    return min(count, 1) if var.any else count


@pytest.mark.parametrize("alias", ALIASES)
def test_variant_moments_equal_a_python_computation_over_the_raw_rows(alias, rng):
    as_of = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    try:
        exp, variants, truth, events = _world(alias, rng, as_of)
        variables, layouts = plan(_metric_specs(window_hours=6), cuped=True)
        pairs = product_pairs(layouts)
        got = variant_moments(exp.id, variables, pairs, as_of, using=alias)

        by_user = _events_by_user(events)
        columns = defaultdict(list)
        for user, (variant_id, t0, forced, _) in truth.items():
            if forced:
                continue
            columns[variant_id].append([_reference_value(v, t0, by_user[user], as_of) for v in variables])
        assert set(got) == {(v.id, None) for v in variants}
        for v in variants:
            expected = Moments.from_data(np.array(columns[v.id]).T)
            m = got[(v.id, None)]
            assert m.n == expected.n
            assert m.sums == pytest.approx(expected.sums, abs=1e-9)
            for a, b in pairs:
                assert m.products[a][b] == pytest.approx(expected.products[a][b], abs=1e-9)
        # The window and the pre-period are not the same variables as the unbounded count.
        assert any(v.window_hours == 6 for v in variables) and any(v.pre_days == 7 for v in variables)
    finally:
        clear_events(alias)


@pytest.mark.parametrize("alias", ALIASES)
def test_a_phase_window_counts_the_users_first_exposed_in_it(alias, rng):
    as_of = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    try:
        exp, variants, truth, _ = _world(alias, rng, as_of)
        cut = as_of - timedelta(days=1)
        variables, layouts = plan(_metric_specs(), cuped=False)
        pairs = product_pairs(layouts)
        for window, inside in ((Window(None, cut), lambda t0: t0 < cut), (Window(cut, None), lambda t0: t0 >= cut)):
            got = variant_moments(exp.id, variables, pairs, as_of, using=alias, window=window)
            expected = defaultdict(int)
            for variant_id, t0, forced, _ in truth.values():
                if not forced and inside(t0):
                    expected[variant_id] += 1
            assert {vid: m.n for (vid, _), m in got.items()} == dict(expected)
            daily = daily_moments(exp.id, [variables[0]], as_of, using=alias, window=window)
            assert {vid: ms[-1].n for vid, ms in daily.by_variant.items()} == dict(expected)
    finally:
        clear_events(alias)


@pytest.mark.parametrize("alias", ALIASES)
def test_segments_split_users_by_an_exposure_attribute(alias, rng):
    as_of = datetime.now(UTC) - timedelta(minutes=30)
    try:
        exp, variants, truth, _ = _world(alias, rng, as_of)
        variables, layouts = plan(_metric_specs(), cuped=False)
        got = variant_moments(exp.id, variables, product_pairs(layouts), as_of, segment_by="platform", using=alias)
        expected = defaultdict(int)
        for variant_id, _, forced, platform in truth.values():
            if not forced:
                expected[(variant_id, platform)] += 1
        assert {k: m.n for k, m in got.items()} == dict(expected)
        # The segments add up to the whole.
        whole = variant_moments(exp.id, variables, product_pairs(layouts), as_of, using=alias)
        for v in variants:
            parts = [m for (vid, _), m in got.items() if vid == v.id]
            assert sum(p.sums[0] for p in parts) == pytest.approx(whole[(v.id, None)].sums[0])
    finally:
        clear_events(alias)


@pytest.mark.parametrize("alias", ALIASES)
def test_daily_cumulative_moments_equal_the_moments_as_of_each_day(alias, rng):
    as_of = datetime.now(UTC) - timedelta(minutes=10)
    try:
        exp, variants, truth, events = _world(alias, rng, as_of)
        ctr = [m for m in _metric_specs() if m.key == "closeup_ctr"]
        variables, layouts = plan(ctr, cuped=False)
        series = daily_moments(exp.id, [variables[i] for i in layouts["closeup_ctr"].post], as_of, using=alias)
        assert series.days == sorted(series.days) and len(series.days) >= 3
        # One point per day, with no gaps, up to the analysis day.
        assert series.days[-1] == as_of.astimezone(UTC).date()
        assert all((b - a).days == 1 for a, b in zip(series.days, series.days[1:], strict=False))

        by_user = _events_by_user(events)
        for i, day in enumerate(series.days):
            end = min(as_of, datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
                      - timedelta(microseconds=1))
            for v in variants:
                rows = [[_reference_value(var, t0, by_user[u], end) for var in variables]
                        for u, (vid, t0, forced, _) in truth.items() if vid == v.id and not forced and t0 <= end]
                expected = Moments.from_data(np.array(rows).T) if rows else Moments(0, (0.0, 0.0), ((0, 0), (0, 0)))
                got = series.by_variant[v.id][i]
                assert got.n == expected.n, (day, v.key)
                assert got.sums == pytest.approx(expected.sums, abs=1e-9)
                assert np.allclose(np.asarray(got.products), np.asarray(expected.products))
    finally:
        clear_events(alias)


@pytest.mark.parametrize("alias", ALIASES)
def test_an_experiment_nobody_was_exposed_to_has_no_moments(alias):
    exp, _ = make_experiment(alias, "empty")
    variables, layouts = plan(_metric_specs())
    assert variant_moments(exp.id, variables, product_pairs(layouts), datetime.now(UTC), using=alias) == {}
    assert daily_moments(exp.id, variables[:2], datetime.now(UTC), using=alias).days == []
