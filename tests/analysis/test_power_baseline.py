"""Before launch the power plan takes its baseline from the primary metric's last 14 days
on the surface, measured as the analysis measures it; the endpoint plans for the
experiment's split and correction, and answers bad input with 400 and field messages."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from analysis.stats.power import users_needed
from analysis.sufficient_statistics import MetricSpec, baseline_moments, plan, product_pairs
from tests.analysis.conftest import ALIASES, add_events, clear_events, make_experiment
from tests.conftest import as_user

NOW = datetime.now(UTC).replace(microsecond=0)


def _events(rng, users: int):
    """Users with impressions and clicks over the last 14 days, and events that must not
    count: older than 14 days, and (for a started experiment) after its start."""
    events, per_user = [], {}
    for i in range(users):
        user = f"b-{i}"
        t0 = NOW - timedelta(days=float(rng.uniform(0.1, 13.5)))
        span = (NOW - t0).total_seconds() - 1
        imps, ctr = 1 + int(rng.poisson(8)), float(rng.beta(2, 20))
        clicks = int(rng.binomial(imps, ctr))
        events += [(user, "impression", t0)]
        events += [(user, "impression", t0 + timedelta(seconds=float(rng.uniform(0, span)))) for _ in range(imps - 1)]
        events += [(user, "click", t0 + timedelta(seconds=float(rng.uniform(0, span)))) for _ in range(clicks)]
        per_user[user] = (clicks, imps)
    events += [("old-user", "impression", NOW - timedelta(days=15)), ("old-user", "click", NOW - timedelta(days=15))]
    return events, per_user


def _ctr_truth(per_user):
    x = np.array([c for c, _ in per_user.values()], dtype=float)
    y = np.array([i for _, i in per_user.values()], dtype=float)
    r = x.sum() / y.sum()
    # The delta method's per-user variance of a ratio of means, from numpy directly.
    cov = np.cov(x, y, ddof=1)
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / y.mean() ** 2
    return r, var


@pytest.mark.django_db(databases=ALIASES)
@pytest.mark.parametrize("alias", ALIASES)
def test_the_baseline_sql_equals_numpy_over_the_raw_events(alias, rng):
    try:
        events, per_user = _events(rng, 150)
        add_events(alias, events)
        spec = MetricSpec("closeup_ctr", "ratio", ("click",), ("impression",))
        variables, layouts = plan([spec], cuped=False)
        got = baseline_moments(variables, product_pairs(layouts), NOW - timedelta(days=14), NOW + timedelta(seconds=1),
                               using=alias)
        x = np.array([[c for c, _ in per_user.values()], [i for _, i in per_user.values()]], dtype=float)
        m = got.moments
        assert m.n == len(per_user)
        assert m.sums == pytest.approx(tuple(x.sum(axis=1)))
        assert np.allclose(np.asarray(m.products), x @ x.T)
        days = {t.astimezone(UTC).date() for _, _, t in events if t >= NOW - timedelta(days=14)}
        assert got.days_with_events == len(days)
    finally:
        clear_events(alias)


@pytest.fixture
def draft(db):
    exp, _ = make_experiment("default", "planned-ranker", weights=(90, 10), status="draft")
    exp.started_at = None
    exp.save(update_fields=["started_at"])
    return exp


def test_a_draft_plans_from_the_last_14_days_of_the_surface(draft, viewer, rng):
    events, per_user = _events(rng, 300)
    add_events("default", events)
    try:
        body = as_user(viewer).get(f"/api/v1/experiments/{draft.key}/power?mde=0.1").json()
    finally:
        clear_events("default")
    mean, var = _ctr_truth(per_user)
    assert body["baseline_source"] == "last_14_days"
    assert body["baseline_mean"] == pytest.approx(mean, rel=1e-9)
    assert body["unit_variance"] == pytest.approx(var, rel=1e-9)
    # Users a day: the surface's distinct users over the days with events, times the
    # experiment's share (all of the layer, 100% traffic here); the control's 90% of it.
    days = len({t.astimezone(UTC).date() for _, _, t in events if t >= NOW - timedelta(days=14)})
    assert body["users_per_day"] == pytest.approx(300 / days)
    assert body["users_per_variant_per_day"] == pytest.approx(0.9 * 300 / days)
    # The plan is the 90/10 split's, under the correction.
    assert body["weights"] == {"control": 0.9, "treatment1": 0.1}
    assert body["comparisons"] == 1 and body["correction"] == "holm"
    assert body["users_needed"] == users_needed(0.1, mean, var, [0.9, 0.1])
    assert body["days_needed"] == pytest.approx(body["users_needed"] / (300 / days), rel=1e-3)
    assert body["users_needed_smallest_arm"] == body["users_per_variant"]
    assert body["baseline"]["users"] == 300


def test_given_weights_and_correction_change_the_plan(draft, viewer):
    client = as_user(viewer)
    base = f"/api/v1/experiments/{draft.key}/power?baseline_mean=0.1&unit_variance=0.09&users_per_day=500"
    even = client.get(base + "&weights=50,50").json()
    skewed = client.get(base).json()  # the experiment's own 90/10
    assert even["baseline_source"] == "given"
    assert skewed["users_needed"] / even["users_needed"] == pytest.approx((1 / 0.9 + 1 / 0.1) / 4, rel=1e-3)
    three = client.get(base + "&weights=1,1,1").json()
    plain = client.get(base + "&weights=1,1,1&correction=none").json()
    assert three["comparisons"] == 2 and three["per_comparison_alpha"] == pytest.approx(0.025)
    assert three["users_needed"] > plain["users_needed"]


@pytest.mark.parametrize("query, field", [
    ("weights=a,b", "weights"), ("weights=1", "weights"), ("weights=0,1", "weights"), ("weights=1,-1", "weights"),
    ("weights=nan,1", "weights"), ("weights=1,inf", "weights"), ("weights=" + ",".join(["1"] * 11), "weights"),
    ("correction=bonferroni", "correction"), ("mde=0", "mde"), ("power=2", "power"),
])
def test_bad_inputs_are_400_with_the_field_named(draft, viewer, query, field):
    r = as_user(viewer).get(f"/api/v1/experiments/{draft.key}/power?baseline_mean=0.1&unit_variance=0.09&{query}")
    assert r.status_code == 400, r.content
    assert field in r.json() and r.json()[field]


def test_no_report_and_no_events_is_a_clear_400(draft, viewer):
    r = as_user(viewer).get(f"/api/v1/experiments/{draft.key}/power")
    assert r.status_code == 400
    assert "last 14 days" in r.json()["baseline_mean"][0]
