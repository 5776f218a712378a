"""CUPED++ through the real SQL: exposures and events in the database, the moments the
analysis query returns, the report's CUPED block, against statsmodels' OLS on the same
raw per-user counts, on every database of the run."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import statsmodels.api as sm

from analysis import results as R
from analysis.report import AnalysisSettings
from analysis.sufficient_statistics import ACTIVE_BEFORE, MetricSpec, plan, product_pairs, variant_moments
from tests.analysis.conftest import ALIASES, add_events, add_exposures, clear_events, make_experiment

pytestmark = pytest.mark.django_db(databases=ALIASES)

SPECS = [MetricSpec("saves_per_user", "mean", ("save",), pre_period_days=7),
         MetricSpec("clicks_per_user", "mean", ("click",), pre_period_days=7)]


def _world(alias, rng, as_of, n=500):
    """Per user: pre-period saves and clicks from one activity level, a third of the users
    new (nothing before exposure); post-exposure saves follow both and the newness."""
    exp, variants = make_experiment(alias, "cuped-pp", weights=(50, 50))
    exposures, events, rows = [], [], []
    for i in range(n):
        v = variants[i % 2]
        t0 = as_of - timedelta(days=float(rng.uniform(0.2, 2.0)))
        activity = rng.gamma(2.0, 1.0)
        new = rng.random() < 0.3
        pre_saves = 0 if new else int(rng.poisson(1.5 * activity))
        pre_clicks = 0 if new else int(rng.poisson(2.5 * activity))
        lift = 0.0 if v.is_control else 0.2
        post_saves = int(rng.poisson(0.3 + 0.5 * pre_saves + 0.3 * pre_clicks + 1.0 * new + lift))
        user = f"u{i}"
        exposures.append((v, user, t0, {}, False))
        for typ, count, before in (("save", pre_saves, True), ("click", pre_clicks, True),
                                   ("save", post_saves, False)):
            for _ in range(count):
                hours = float(rng.uniform(0.01, 6.9 * 24)) if before else float(rng.uniform(0.01, 4.0))
                events.append((user, typ, t0 - timedelta(hours=hours) if before else t0 + timedelta(hours=hours)))
        rows.append((v.id, post_saves, pre_saves, pre_clicks, float(pre_saves + pre_clicks > 0)))
    add_exposures(alias, exp, exposures)
    add_events(alias, events)
    return exp, variants, np.array(rows, dtype=float)


@pytest.mark.parametrize("alias", ALIASES)
def test_cuped_plus_plus_on_the_databases_moments_equals_ols_on_the_raw_users(alias, rng):
    as_of = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    try:
        exp, variants, raw = _world(alias, rng, as_of)
        variables, layouts = plan(SPECS, cuped=True)
        got = variant_moments(exp.id, variables, product_pairs(layouts), as_of, using=alias)
        # As analysis.services builds them.
        metrics = [R.MetricInfo(s.key, s.key, s.kind, "higher", "secondary", tuple(layouts[s.key].post),
                                tuple(layouts[s.key].pre),
                                covariates=tuple((n, k, tuple(at)) for n, k, at in layouts[s.key].covariates))
                   for s in SPECS]
        assert [c[0] for c in metrics[0].covariates] == ["clicks_per_user", ACTIVE_BEFORE]
        infos = [R.VariantInfo(v.id, v.key, 50, v.is_control) for v in variants]
        result = R.metric_result(metrics[0], infos, {vid: m for (vid, _), m in got.items()},
                                 AnalysisSettings(cuped=True))
    finally:
        clear_events(alias)

    post, own, other, active = raw[:, 1], raw[:, 2], raw[:, 3], raw[:, 4]
    treated = (raw[:, 0] == variants[1].id).astype(float)
    x = np.column_stack([np.ones_like(post), treated, own - own.mean(), other - other.mean(),
                         active - active.mean()])
    fit = sm.OLS(post, x).fit(cov_type="HC1")
    c = result.comparisons[0].cuped
    assert c.covariates == ("saves_per_user", "clicks_per_user", ACTIVE_BEFORE)
    assert c.theta == pytest.approx(fit.params[2], rel=1e-9)
    by_key = {v.variant: v for v in result.variants}
    assert by_key["control"].cuped_mean == pytest.approx(fit.params[0], rel=1e-9)
    assert c.absolute_lift == pytest.approx(fit.params[1], rel=1e-9)
    assert c.absolute_se == pytest.approx(fit.bse[1], rel=0.03)
    # The unadjusted comparison is the plain difference of means, untouched.
    plain = result.comparisons[0]
    assert plain.absolute_lift == pytest.approx(post[treated == 1].mean() - post[treated == 0].mean(), rel=1e-9)
    # and the variance went down by what the regression explains within variants.
    within = sm.OLS(post, np.column_stack([np.ones_like(post), treated, own, other, active])).fit()
    r2 = 1 - within.ssr / sm.OLS(post, np.column_stack([np.ones_like(post), treated])).fit().ssr
    assert c.variance_reduction == pytest.approx(r2, abs=0.02)


@pytest.mark.django_db
def test_an_analysis_stores_the_cuped_plus_plus_covariates_and_reads_them_back(experimenter):
    from analysis.models import Metric
    from analysis.report import Report
    from analysis.services import run_analysis
    from experiments import services

    layer = services.create_layer(key="layer-cpp", name="Layer")
    e = services.create_experiment(actor=experimenter, layer=layer, key="cpp", name="CUPED++", hypothesis="h",
                                   variants=[
        {"key": "control", "weight": 50, "is_control": True, "recommender": {"name": "popularity", "params": {}}},
        {"key": "treatment", "weight": 50, "is_control": False, "recommender": {"name": "popularity", "params": {}}},
    ], primary_metric="saves_per_user", guardrail_metrics=["hide_rate"])
    services.transition(e, "start", actor=experimenter)
    # 40 users a side: below the default minimum data, which would leave no CUPED block to read.
    Metric.objects.update(min_users_per_variant=2, min_events_per_variant=0)
    now = datetime.now(UTC).replace(microsecond=0)
    control, treatment = list(e.variants.all())
    add_exposures("default", e, [((control, treatment)[i % 2], f"k{i}", now - timedelta(hours=3), {}, False)
                                 for i in range(80)])
    try:
        add_events("default", [(f"k{i}", typ, now - timedelta(days=2)) for i in range(0, 80, 3)
                               for typ in ("save",) * (i % 4) + ("hide",) * (i % 3) + ("impression",)]
                   + [(f"k{i}", "save", now - timedelta(hours=2)) for i in range(80) for _ in range(i % 5)])
        doc = run_analysis(e).results
    finally:
        clear_events("default")
    saves = next(m for m in doc["metrics"] if m["metric"] == "saves_per_user")
    cuped = saves["comparisons"][0]["cuped"]
    assert cuped["covariates"][0] == "saves_per_user" and cuped["covariates"][-1] == ACTIVE_BEFORE
    assert "hide_rate" in cuped["covariates"]
    assert Report.from_json(doc).to_json() == doc
