"""A PM sees each variant's offline numbers beside its online lift on the results page
and in the API, and across finished experiments whether offline NDCG predicted the
online result: the agreement count and the rank correlation from the rows shown."""

import math

import pytest
from scipy import stats

from experiments import services
from recommenders.models import ModelVersion
from tests.conftest import as_user
from tests.dashboard.conftest import interleaved_experiment, simulated_experiment

pytestmark = pytest.mark.django_db


def retrain(day: int, control_ndcg: float | None, treatment_ndcg: float | None):
    """New active versions of popularity (the control) and pixie (the treatment) measured on
    one held-out day, as a retrain leaves them; None: not measured."""
    ModelVersion.objects.update(is_active=False)
    window = (f"2026-11-{day:02d}T00:00:00+00:00", f"2026-11-{day + 1:02d}T00:00:00+00:00")
    for name, ndcg in (("popularity", control_ndcg), ("pixie", treatment_ndcg)):
        offline = {} if ndcg is None else {"ndcg_at_10": ndcg, "coverage": 0.25, "users": 12_345,
                                           "holdout_start": window[0], "holdout_end": window[1]}
        ModelVersion.objects.create(name=name, version=f"{name[:3]}-{day}", path="/nowhere", build_seconds=1,
                                    size_bytes=1, is_active=True, offline=offline)


def finished(owner, key, day, offline_ndcg, ctr, users=400, seed=3):
    retrain(day, *offline_ndcg)
    e = simulated_experiment(owner, key, ctr=ctr, hide={"control": 0.01, "treatment": 0.01}, users=users, seed=seed)
    services.transition(e, "stop", actor=owner)
    return e


def test_the_results_page_and_api_show_the_versions_offline_numbers_beside_the_online_lift(experimenter):
    finished(experimenter, "retrain-ab", 7, (0.1012, 0.1043), {"control": 0.05, "treatment": 0.06})
    client = as_user(experimenter)

    body = client.get("/api/v1/experiments/retrain-ab/results").json()

    offline = body["offline"]
    assert [(v["variant"], v["recommender"], v["version"]) for v in offline["variants"]] == [
        ("control", "popularity", "pop-7"), ("treatment", "pixie", "pix-7")]
    assert [v["ndcg_at_10"] for v in offline["variants"]] == [0.1012, 0.1043]
    assert {v["source"] for v in offline["variants"]} == {"held-out day 2026-11-07"}
    (comparison,) = offline["comparisons"]
    assert comparison["comparable"]
    assert comparison["ndcg_relative_change"] == pytest.approx((0.1043 - 0.1012) / 0.1012)
    primary = next(m for m in body["metrics"] if m["role"] == "primary")
    (lift,) = primary["comparisons"]

    page = client.get("/experiments/retrain-ab/results").content.decode()

    assert "Offline beside online" in page and "0.1043" in page and "12,345" in page and "25.0%" in page
    relative = comparison["ndcg_relative_change"] * 100
    online = f"{lift['relative_lift'] * 100:+.2f}% [{lift['ci_low'] * 100:+.2f}%, {lift['ci_high'] * 100:+.2f}%]"
    assert (f"Offline, treatment&#x27;s NDCG@10 is {relative:.1f}% above control&#x27;s on the held-out day "
            f"2026-11-07; online, its {primary['name']} is {online}.") in page


def test_without_offline_numbers_the_page_says_so(experimenter):
    finished(experimenter, "unmeasured", 8, (None, None), {"control": 0.05, "treatment": 0.05})

    page = as_user(experimenter).get("/experiments/unmeasured/results").content.decode()

    assert "No offline numbers for the versions these variants serve" in page
    assert "no offline numbers for either variant" in page


def test_across_experiments_the_agreement_and_rank_correlation_are_those_of_the_rows(experimenter):
    # Offline up or down against a true online lift up or down: some agree, some do not.
    finished(experimenter, "up-up", 1, (0.10, 0.12), {"control": 0.05, "treatment": 0.07}, seed=1)
    finished(experimenter, "up-down", 3, (0.10, 0.11), {"control": 0.06, "treatment": 0.04}, seed=2)
    finished(experimenter, "down-down", 5, (0.10, 0.08), {"control": 0.06, "treatment": 0.03}, seed=3)
    finished(experimenter, "down-up", 7, (0.10, 0.095), {"control": 0.05, "treatment": 0.055}, seed=4)
    finished(experimenter, "not-measured", 9, (None, 0.1), {"control": 0.05, "treatment": 0.05}, seed=5)
    retrain(11, 0.1, 0.2)
    running = simulated_experiment(experimenter, "still-running", ctr={"control": 0.05, "treatment": 0.05},
                                   hide={"control": 0.01, "treatment": 0.01}, users=200)
    client = as_user(experimenter)

    body = client.get("/api/v1/recommenders/offline-online").json()

    rows = body["rows"]
    assert {r["experiment"] for r in rows} == {"up-up", "up-down", "down-down", "down-up", "not-measured"}
    paired = [r for r in rows if r["offline"]["comparable"] and r["online"]["value"] is not None]
    assert len(paired) == 4 == body["summary"]["paired"]
    assert next(r for r in rows if r["experiment"] == "not-measured")["agree"] is None
    signs = [(math.copysign(1, r["offline"]["ndcg_change"]), math.copysign(1, r["online"]["value"])) for r in paired]
    agree = sum(1 for a, b in signs if a == b)
    assert body["summary"]["agree"] == agree and body["summary"]["directed"] == 4
    assert [r["agree"] for r in paired] == [a == b for a, b in signs]
    expected = stats.spearmanr([r["offline"]["ndcg_relative_change"] for r in paired],
                               [r["online"]["value"] for r in paired])
    assert body["summary"]["spearman"] == pytest.approx(expected.statistic)
    assert body["summary"]["spearman_p"] == pytest.approx(expected.pvalue)

    page = client.get("/recommenders/offline-online").content.decode()

    assert f"of the 4 where both moved, {agree} agree in direction" in page
    assert f"ρ = {expected.statistic:+.2f}" in page
    assert "still-running" not in page and 'id="offline-online-data"' in page
    with_running = client.get("/recommenders/offline-online?running=1").content.decode()
    assert "still-running" in with_running and '<span class="badge neutral">running</span>' in with_running
    assert any(r["experiment"] == running.key and r["status"] == "running"
               for r in client.get("/api/v1/recommenders/offline-online?include_running=true").json()["rows"])


def test_fewer_than_three_pairs_give_no_correlation_and_bad_input_is_a_400(experimenter):
    finished(experimenter, "only-one", 1, (0.10, 0.12), {"control": 0.05, "treatment": 0.06})
    client = as_user(experimenter)

    body = client.get("/api/v1/recommenders/offline-online").json()

    assert body["summary"]["paired"] == 1 and body["summary"]["spearman"] is None
    assert "A rank correlation needs at least 3 pairs (1 so far)" in \
        client.get("/recommenders/offline-online").content.decode()
    bad = client.get("/api/v1/recommenders/offline-online?include_running=perhaps")
    assert bad.status_code == 400 and "include_running" in bad.json()


def test_the_pages_link_to_it(viewer):
    client = as_user(viewer)
    assert 'href="/recommenders/offline-online"' in client.get("/recommenders").content.decode()
    page = client.get("/recommenders/offline-online").content.decode()
    assert page.count('href="/recommenders/offline-online"') >= 1 and "No finished experiment yet." in page


def test_an_interleaving_experiment_shows_the_preference_delta_in_points(experimenter):
    for name, ndcg in (("popularity", 0.08), ("ranker", 0.11)):
        ModelVersion.objects.create(name=name, version="v1", path="/nowhere", build_seconds=1, size_bytes=1,
                                    is_active=True, offline={"ndcg_at_10": ndcg, "coverage": 0.3, "users": 500,
                                                             "holdout_start": "2026-12-07T00:00:00+00:00",
                                                             "holdout_end": "2026-12-08T00:00:00+00:00"})
    e = interleaved_experiment(experimenter, "pop-vs-ranker", click={"popularity": 0.05, "ranker": 0.12})
    services.transition(e, "stop", actor=experimenter)
    client = as_user(experimenter)
    block = client.get("/api/v1/experiments/pop-vs-ranker/results").json()["interleaving"]

    page = client.get("/experiments/pop-vs-ranker/results").content.decode()

    delta = f"Δ {block['delta'] * 100:+.1f} pp [{block['ci_low'] * 100:+.1f} pp, {block['ci_high'] * 100:+.1f} pp]"
    assert (f"Offline, ranker&#x27;s NDCG@10 is {(0.11 - 0.08) / 0.08 * 100:.1f}% above popularity&#x27;s on the "
            f"held-out day 2026-12-07; online, users&#x27; preference for its pins is {delta}.") in page
    (row,) = client.get("/api/v1/recommenders/offline-online").json()["rows"]
    assert row["online"]["kind"] == "preference_delta" and row["online"]["value"] == block["delta"]


def test_the_experiment_page_lists_each_variants_version_and_offline_ndcg(experimenter):
    e = finished(experimenter, "detail-offline", 4, (0.1012, 0.1043), {"control": 0.05, "treatment": 0.05})

    page = as_user(experimenter).get(f"/experiments/{e.key}/").content.decode()

    assert "pix-4" in page and "0.1043" in page and "held-out day 2026-11-04" in page
    assert f'href="/experiments/{e.key}/results#offline"' in page
