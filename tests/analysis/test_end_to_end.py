"""End to end through the real parts: gunicorn serving the client API, a Celery worker
storing exposures and events, the analysis in the database. The simulator drives
six thousand users with a known lift on one variant; the analysis must find
the truth inside its confidence interval."""

import pytest
from django.conf import settings as django_settings
from django.db import connection

from analysis.services import run_analysis
from demo.simulator import Config, Simulator
from events.selectors import ingestion_stats
from experiments import services as experiment_services
from experiments.models import Experiment, Exposure, Layer
from recommenders import services as recommender_services
from recommenders.synthetic import DEMO_WORLD, generate_world
from tests import processes

USERS = 6_000
LIFT = 1.3


def _stored(event_type: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM experiments_event WHERE type = %s", [event_type])
        return cursor.fetchone()[0]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(django_settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                    reason="the end-to-end run is on PostgreSQL (.ci/run); make run's SQLite is for the demo")
def test_simulated_traffic_through_http_celery_and_the_database_recovers_the_true_lift(
        tmp_path, settings, experimenter, celery_worker_process):
    from accounts.services import create_api_key

    settings.RECOMMENDER_MODELS_DIR = tmp_path / "models"
    world = generate_world(**DEMO_WORLD)
    recommender_services.import_world(world)
    recommender_services.build_all(["popularity"])
    layer = experiment_services.create_layer(key="e2e", name="End to end")
    exp = experiment_services.create_experiment(actor=experimenter, layer=layer, key="e2e-lift", name="E2E", variants=[
        {"key": "control", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}},
        {"key": "treatment", "weight": 50, "recommender": {"name": "popularity"}},
    ])
    # Fixed salts make the split of these fixed user ids the same every run: with random
    # ones the sample ratio check flags a fair split 1 run in 1,000, by design.
    Layer.objects.filter(pk=layer.pk).update(salt="e2e-layer")
    Experiment.objects.filter(pk=exp.pk).update(salt="e2e-experiment")
    exp.refresh_from_db()
    experiment_services.transition(exp, "start", actor=experimenter)
    key = create_api_key("e2e").key
    try:
        with processes.web_server(workers=2, RECOMMENDER_MODELS_DIR=settings.RECOMMENDER_MODELS_DIR) as base:
            # A retrying client: 2% of events sent twice; each must be stored once.
            simulator = Simulator(world, Config(base_url=base, api_key=key, users=USERS, threads=8, k=10,
                                                lift={"treatment": LIFT}, duplicate=0.02, seed=3))
            stats = simulator.run().summary()
        assert stats["errors"] == 0 and stats["visits"] == USERS and stats["rejected"] == 0
        truth = {v: s["expected_clicks"] / s["impressions"] for v, s in stats["by_variant"].items()}
        clicks = sum(s["clicks"] for s in stats["by_variant"].values())
        impressions = sum(s["impressions"] for s in stats["by_variant"].values())
        def counts():
            return (Exposure.objects.filter(experiment=exp).count(), _stored("click"), _stored("impression"))

        try:
            processes.wait_until(lambda: counts() == (USERS, clicks, impressions), timeout=180,
                                 what="every exposure, impression and click to be stored once")
        except TimeoutError as exc:
            raise AssertionError(f"(exposures, clicks, impressions) stored {counts()}, expected "
                                 f"{(USERS, clicks, impressions)}; inbox {ingestion_stats()}") from exc

        body = run_analysis(exp).results
        ctr = next(b for b in body["metrics"] if b["metric"] == "closeup_ctr")
        users = {v["variant"]: v["users"] for v in ctr["variants"]}
        assert users == {v: s["users"] for v, s in stats["by_variant"].items()}
        assert body["srm"]["flagged"] is False
        c = ctr["comparisons"][0]
        true_lift = truth["treatment"] / truth["control"] - 1
        # The report's 95% CI misses the truth in 1 run of 20 by design (one CI run here did,
        # at 2.6 standard errors), and the simulation is not seeded end to end (threads
        # interleave): CI checks the 99.9% interval from the same estimate and standard error.
        half = 3.2905 * c["relative_se"]
        assert abs(c["relative_lift"] - true_lift) <= half, (c["relative_lift"], c["relative_se"], true_lift)
        assert c["significant"] is True
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM experiments_event")


COMPOSED_USERS = 4_000
RETRIEVAL_LIFT, RANKING_LIFT = 1.3, 1.25


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(django_settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                    reason="the end-to-end run is on PostgreSQL (.ci/run); make run's SQLite is for the demo")
def test_a_retrieval_and_a_ranking_experiment_on_the_same_users_each_recover_their_own_lift(
        tmp_path, settings, experimenter, celery_worker_process):
    """Issue 15: both stages shaped every closeup, each user is in both experiments, and
    each experiment's analysis finds its own injected lift: independent layers, and
    exposures only where the response was shaped."""
    from accounts.services import create_api_key

    settings.RECOMMENDER_MODELS_DIR = tmp_path / "models"
    world = generate_world(**DEMO_WORLD)
    recommender_services.import_world(world)
    recommender_services.build_all(["popularity", "board_cooccurrence", "ranker"])
    experiments = {}
    for stage, control, treatment in (("retrieval", "popularity", "board_cooccurrence"),
                                      ("ranking", "ranker", "ranker")):
        layer = experiment_services.create_layer(key=f"sim-{stage}", name=stage, stage=stage)
        exp = experiment_services.create_experiment(
            actor=experimenter, layer=layer, key=f"sim-{stage}", name=stage, variants=[
                {"key": "control", "weight": 50, "is_control": True, "recommender": {"name": control}},
                {"key": "treatment", "weight": 50, "recommender": {"name": treatment}}])
        Layer.objects.filter(pk=layer.pk).update(salt=f"sim-{stage}-layer")  # a fixed split, as above
        Experiment.objects.filter(pk=exp.pk).update(salt=f"sim-{stage}-experiment")
        exp.refresh_from_db()
        experiment_services.transition(exp, "start", actor=experimenter)
        experiments[stage] = exp
    key = create_api_key("composed").key
    lifts = {"sim-retrieval:treatment": RETRIEVAL_LIFT, "sim-ranking:treatment": RANKING_LIFT}
    try:
        with processes.web_server(workers=2, RECOMMENDER_MODELS_DIR=settings.RECOMMENDER_MODELS_DIR) as base:
            simulator = Simulator(world, Config(base_url=base, api_key=key, users=COMPOSED_USERS, threads=8, k=10,
                                                lift=lifts, seed=11))
            stats = simulator.run().summary()
        assert stats["errors"] == 0 and stats["visits"] == COMPOSED_USERS
        arms = stats["by_assignment"]
        assert {k: v["users"] for k, v in arms.items()}.keys() == {
            "sim-retrieval:control", "sim-retrieval:treatment", "sim-ranking:control", "sim-ranking:treatment"}
        clicks = sum(s["clicks"] for s in stats["by_variant"].values())

        def stored():
            return ([Exposure.objects.filter(experiment=e).count() for e in experiments.values()], _stored("click"))

        processes.wait_until(lambda: stored() == ([COMPOSED_USERS, COMPOSED_USERS], clicks), timeout=180,
                             what="both experiments' exposures and every click to be stored")
        for stage, exp in experiments.items():
            body = run_analysis(exp).results
            assert body["srm"]["flagged"] is False
            ctr = next(b for b in body["metrics"] if b["metric"] == "closeup_ctr")
            users = {v["variant"]: v["users"] for v in ctr["variants"]}
            assert users == {v: arms[f"{exp.key}:{v}"]["users"] for v in ("control", "treatment")}
            rate = {v: arms[f"{exp.key}:{v}"]["expected_clicks"] / arms[f"{exp.key}:{v}"]["impressions"]
                    for v in ("control", "treatment")}
            true_lift = rate["treatment"] / rate["control"] - 1
            c = ctr["comparisons"][0]
            # The 99.9% interval from the report's estimate and standard error, as above.
            assert abs(c["relative_lift"] - true_lift) <= 3.2905 * c["relative_se"], (stage, c, true_lift)
            assert c["significant"] is True, stage
            # Every closeup each arm shaped was counted for it (each visit is a new user).
            assert {row["variant"]: row["requests"] for row in body["serving"]} == users
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM experiments_event")
