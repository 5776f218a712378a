"""An interleaving experiment of popularity against the learned ranker, end to end
through gunicorn, a Celery worker and PostgreSQL, driven by the simulator (clicks from
each pin's relevance to the person and its position only): the served impressions
carry both teams equally often at the top, and the analysis names the ranker the
significant winner with far fewer users than the A/B power block asks for."""

import pytest
from django.conf import settings as django_settings
from django.db import connection

from analysis.services import run_analysis
from demo.simulator import Config, Simulator
from events.selectors import ingestion_stats
from experiments import services as experiment_services
from experiments.models import Experiment, Exposure, Layer
from recommenders import services as recommender_services
from recommenders.synthetic import generate_world
from tests import processes

USERS = 1_500


def _top_positions(experiment_id: int) -> dict[int, dict[int, int]]:
    """Per position 0-2: how many served impressions each team's variant id placed there."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT position, team, count(*) FROM experiments_event WHERE type = 'impression' "
                       "AND team IS NOT NULL AND position < 3 GROUP BY position, team")
        out: dict[int, dict[int, int]] = {}
        for position, team, n in cursor.fetchall():
            out.setdefault(position, {})[team] = n
    return out


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(django_settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                    reason="the end-to-end run is on PostgreSQL (.ci/run); make run's SQLite is for the demo")
def test_interleaving_names_the_better_ranker_with_far_fewer_users_than_an_ab_test_needs(
        tmp_path, settings, experimenter, celery_worker_process):
    from accounts.services import create_api_key

    settings.RECOMMENDER_MODELS_DIR = tmp_path / "models"
    world = generate_world(n_pins=800, n_users=200, n_topics=8, seed=11)
    recommender_services.import_world(world)
    recommender_services.build_all(["popularity", "board_cooccurrence", "pixie", "ranker"])
    layer = experiment_services.create_layer(key="il-e2e", name="Interleaving end to end")
    exp = experiment_services.create_experiment(
        actor=experimenter, layer=layer, key="il-e2e", name="Popularity against the ranker", design="interleaving",
        variants=[{"key": "popularity", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}},
                  {"key": "ranker", "weight": 50, "recommender": {"name": "ranker"}}])
    Layer.objects.filter(pk=layer.pk).update(salt="il-e2e-layer")  # a fixed split: the SRM check stays quiet
    Experiment.objects.filter(pk=exp.pk).update(salt="il-e2e-experiment")
    exp.refresh_from_db()
    experiment_services.transition(exp, "start", actor=experimenter)
    key = create_api_key("il-e2e").key
    try:
        with processes.web_server(workers=2, RECOMMENDER_MODELS_DIR=settings.RECOMMENDER_MODELS_DIR,
                                  RECOMMENDER_TIMEOUT_MS=5000) as base:
            simulator = Simulator(world, Config(base_url=base, api_key=key, users=USERS, threads=8, k=10, seed=5))
            stats = simulator.run().summary()
        assert stats["errors"] == 0 and stats["visits"] == USERS
        teams = stats["by_team"]
        assert set(teams) == {"il-e2e:popularity", "il-e2e:ranker"}
        impressions = sum(t["impressions"] for t in teams.values())
        assert impressions == USERS * 10  # every list was merged: no ranker failed

        def stored():
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM experiments_event WHERE team IS NOT NULL")
                return Exposure.objects.filter(experiment=exp).count(), cursor.fetchone()[0]

        try:
            processes.wait_until(lambda: stored() == (USERS, impressions), timeout=180,
                                 what="every exposure and labelled impression to be stored")
        except TimeoutError as exc:
            raise AssertionError(f"stored {stored()}, expected {(USERS, impressions)}; {ingestion_stats()}") from exc

        ids = dict(exp.variants.values_list("key", "id"))
        for position, by_team in _top_positions(exp.id).items():
            # Team draft's coin: each team first (and second, third) in half the requests;
            # ±5 points is about four standard deviations at 1,500 requests.
            assert set(by_team) == set(ids.values())
            assert abs(by_team[ids["ranker"]] / sum(by_team.values()) - 0.5) < 0.05, (position, by_team)

        body = run_analysis(exp).results
        block = body["interleaving"]
        assert body["design"] == "interleaving" and block["winner"] == "ranker" and block["significant"]
        assert block["ci_low"] > 0 and block["p_value"] < 0.001
        assert block["wins"]["ranker"] > block["wins"]["popularity"]
        # The A/B test of the same pair on the primary metric would need far more users.
        assert body["power"]["users_needed"] > 10 * block["users"], (body["power"], block["users"])
        assert body["srm"]["flagged"] is False
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM experiments_event")
