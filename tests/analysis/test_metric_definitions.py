"""Metrics a team defines: the sum of the events' values, distinct days, property filters
(eq, neq, in) on either side of a ratio, and a window in days, computed in the SQL on
every database of the run and checked against numpy on the raw rows; bad definitions
are 400s naming the field; hostile property names and values stay parameters."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db import connections

from analysis.models import Metric
from analysis.sufficient_statistics import MetricSpec, plan, product_pairs, variant_moments
from tests.analysis.conftest import ALIASES, add_exposures, clear_events, make_experiment
from tests.conftest import as_user

pytestmark = pytest.mark.django_db(databases=ALIASES)


def add_valued(alias, rows):
    """rows: (user_id, type, occurred_at, value, properties), as ingestion stores them."""
    conn = connections[alias]
    pg = conn.vendor == "postgresql"
    if pg:
        from events import storage

        storage.forget_known_partitions()
        storage.ensure_partitions({r[2].astimezone(UTC).date() for r in rows})
    adapt = conn.ops.adapt_datetimefield_value
    now = datetime.now(UTC)
    cast = "CAST(%s AS jsonb)" if pg else "%s"
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO experiments_event (event_id, occurred_at, user_id, type, pin_id, value, properties, "
            f"received_at) VALUES (%s, %s, %s, %s, 1, %s, {cast}, %s)",
            [((uuid.uuid4() if pg else uuid.uuid4().hex), adapt(t), u, typ, value,
              None if props is None else json.dumps(props), adapt(now)) for u, typ, t, value, props in rows])


PLATFORMS = ["ios", "android", "web", None]


def _world(alias, rng, as_of, users=160):
    exp, variants = make_experiment(alias, f"defs-{alias}")
    truth, rows = {}, []
    for n in range(users):
        user = f"u{n}"
        variant = variants[n % 2]
        t0 = as_of - timedelta(days=float(rng.uniform(2, 9)))
        truth[user] = (variant.id, t0)
        platform = PLATFORMS[n % 4]
        for _ in range(int(rng.integers(0, 14))):
            t = t0 + timedelta(hours=float(rng.uniform(-30, 24 * 8)))  # some before exposure, some past as_of
            typ = ["closeup", "click", "impression"][int(rng.integers(0, 3))]
            props = None if platform is None else {"platform": platform, "app": f"v{n % 3}"}
            rows.append((user, typ, t, float(np.round(rng.gamma(2, 900), 3)) if typ == "closeup" else None, props))
    add_exposures(alias, exp, [(variants[int(u[1:]) % 2], u, t0, {}, False) for u, (_, t0) in truth.items()])
    add_valued(alias, rows)
    return exp, variants, truth, rows


def _per_user(truth, rows, as_of, *, types, measure="count", window_days=None, keep=lambda p: True):
    """The definition computed in Python on the raw rows, per user."""
    out = {}
    for user, (_, t0) in truth.items():
        # As the SQL counts: from the first exposure, up to the analysis time, before the window's end.
        mine = [r for r in rows if r[0] == user and r[1] in types and t0 <= r[2] <= as_of
                and (not window_days or r[2] < t0 + timedelta(days=window_days)) and keep(r[4] or {})]
        if measure == "value":
            out[user] = sum(r[3] or 0.0 for r in mine)
        elif measure == "days":
            out[user] = len({r[2].astimezone(UTC).date() for r in mine})
        else:
            out[user] = len(mine)
    return out


@pytest.mark.parametrize("alias", ALIASES)
def test_each_definition_equals_numpy_on_the_raw_rows(alias, rng):
    as_of = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    try:
        exp, variants, truth, rows = _world(alias, rng, as_of)
        ios = [{"property": "platform", "op": "eq", "value": "ios"}]
        not_ios = [{"property": "platform", "op": "neq", "value": "ios"}]
        mobile = [{"property": "platform", "op": "in", "value": ["ios", "android"]}]
        specs = [
            MetricSpec("dwell", "mean", ("closeup",), (), "sum", None, 0),
            MetricSpec("dwell_7d", "mean", ("closeup",), (), "sum", 7 * 24, 0),
            MetricSpec("active_days", "mean", ("click", "closeup"), (), "days", None, 0),
            MetricSpec("ios_ctr", "ratio", ("click",), ("impression",), "count", None, 0,
                       numerator_filters=ios, denominator_filters=ios),
            MetricSpec("dwell_per_mobile_impression", "ratio", ("closeup",), ("impression",), "sum", None, 0,
                       numerator_filters=mobile, denominator_filters=mobile),
            MetricSpec("clicks_off_ios", "mean", ("click",), (), "count", None, 0, numerator_filters=not_ios),
            MetricSpec("days_per_impression_day", "ratio", ("click",), ("impression",), "days", None, 0,
                       denominator_aggregation="days"),
        ]
        variables, layouts = plan(specs, cuped=False)
        got = variant_moments(exp.id, variables, product_pairs(layouts), as_of, using=alias)
        expected = {
            "dwell": [_per_user(truth, rows, as_of, types={"closeup"}, measure="value")],
            "dwell_7d": [_per_user(truth, rows, as_of, types={"closeup"}, measure="value", window_days=7)],
            "active_days": [_per_user(truth, rows, as_of, types={"click", "closeup"}, measure="days")],
            "ios_ctr": [_per_user(truth, rows, as_of, types={"click"}, keep=lambda p: p.get("platform") == "ios"),
                        _per_user(truth, rows, as_of, types={"impression"},
                                  keep=lambda p: p.get("platform") == "ios")],
            "dwell_per_mobile_impression": [
                _per_user(truth, rows, as_of, types={"closeup"}, measure="value",
                          keep=lambda p: p.get("platform") in ("ios", "android")),
                _per_user(truth, rows, as_of, types={"impression"},
                          keep=lambda p: p.get("platform") in ("ios", "android"))],
            "clicks_off_ios": [_per_user(truth, rows, as_of, types={"click"},
                                         keep=lambda p: p.get("platform") != "ios")],
            "days_per_impression_day": [_per_user(truth, rows, as_of, types={"click"}, measure="days"),
                                        _per_user(truth, rows, as_of, types={"impression"}, measure="days")],
        }
        for key, columns in expected.items():
            for variable_index, per_user in zip(layouts[key].post, columns, strict=True):
                for variant in variants:
                    values = np.array([per_user[u] for u, (vid, _) in truth.items() if vid == variant.id])
                    moments = got[(variant.id, None)]
                    assert moments.n == len(values)
                    assert moments.sums[variable_index] == pytest.approx(values.sum(), rel=1e-9, abs=1e-9), key
                    assert moments.products[variable_index][variable_index] == pytest.approx(
                        (values ** 2).sum(), rel=1e-9), key
    finally:
        clear_events(alias)


def test_bad_definitions_are_400s_naming_the_field(experimenter, admin_user):
    client = as_user(admin_user)
    base = {"key": "dwell", "name": "Dwell", "kind": "mean", "numerator_types": ["closeup"], "aggregation": "sum"}
    cases = [
        ({"numerator_types": ["scroll"]}, "numerator_types"),
        ({"window_days": 0}, "window_days"),
        ({"window_days": 91}, "window_days"),
        ({"numerator_filters": [{"property": "platform", "op": "like", "value": "i%"}]}, "numerator_filters"),
        ({"numerator_filters": [{"property": "plat form", "op": "eq", "value": "ios"}]}, "numerator_filters"),
        ({"numerator_filters": [{"property": "platform", "op": "in", "value": "ios"}]}, "numerator_filters"),
        ({"numerator_filters": [{"property": "platform", "op": "eq", "value": {"x": 1}}]}, "numerator_filters"),
        ({"numerator_filters": "platform=ios"}, "numerator_filters"),
        ({"denominator_filters": [{"property": "platform", "op": "eq", "value": "ios"}]}, "denominator_filters"),
        ({"aggregation": "median"}, "aggregation"),
    ]
    for change, field in cases:
        answer = client.post("/api/v1/metrics", {**base, **change}, format="json")
        assert answer.status_code == 400, change
        assert field in answer.json(), (change, answer.json())
    made = client.post("/api/v1/metrics", {**base, "window_days": 7,
                                           "numerator_filters": [{"property": "platform", "op": "eq",
                                                                  "value": "ios"}]}, format="json")
    assert made.status_code == 201, made.json()
    assert made.json()["window_hours"] == 168 and made.json()["window_days"] == 7


@pytest.mark.parametrize("alias", ALIASES)
def test_hostile_property_names_and_values_stay_parameters(alias, rng):
    as_of = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    try:
        exp, variants, truth, rows = _world(alias, rng, as_of, users=20)
        hostile_value = "ios'); DELETE FROM experiments_event; --"
        hostile_name = "platform.x-y_z"  # dots and dashes are allowed in names: a JSON path on SQLite
        add_valued(alias, [("u0", "click", as_of - timedelta(minutes=5), None,
                            {hostile_name: hostile_value, "platform": "ios"})])
        spec = (MetricSpec("hostile", "mean", ("click",), (), "count", None, 0, numerator_filters=[
            {"property": hostile_name, "op": "eq", "value": hostile_value},
            {"property": "platform", "op": "in", "value": ["ios", "x' OR '1'='1"]}]))
        variables, layouts = plan([spec], cuped=False)
        got = variant_moments(exp.id, variables, product_pairs(layouts), as_of, using=alias)
        assert sum(m.sums[0] for m in got.values()) == 1  # exactly the one event with both
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM experiments_event")
            assert cursor.fetchone()[0] == len(rows) + 1  # nothing was deleted
        assert Metric.objects.using(alias).filter(key="closeup_ctr").exists()
    finally:
        clear_events(alias)
