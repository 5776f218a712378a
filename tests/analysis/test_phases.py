"""Analysis by phase: a report counts the users first exposed in one phase (by default
the current one), their events up to the phase's end, and checks the sample ratio
against that phase's weights."""

from datetime import UTC, datetime, timedelta

import pytest

from analysis.models import AnalysisReport
from experiments.models import Phase
from tests.analysis.conftest import add_events, add_exposures, clear_events, make_experiment
from tests.conftest import as_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def phased():
    """50/50 for two days, then 90/10: 200 + 200 users first exposed in phase 1, 360 + 40
    in phase 2. Every user has 10 impressions and 1 click right after exposure; phase-1
    users come back in phase 2 for 5 more impressions, which phase 1 must not count."""
    now = datetime.now(UTC)
    start, change = now - timedelta(days=3), now - timedelta(days=1)
    exp, (control, treatment) = make_experiment("default", "phased", started_at=start)
    Phase.objects.create(experiment=exp, number=1, started_at=start, weights={"control": 50, "treatment1": 50},
                         traffic_percent=100)
    Phase.objects.create(experiment=exp, number=2, started_at=change, weights={"control": 90, "treatment1": 10},
                         traffic_percent=100)
    exposures, events = [], []
    cohorts = [(1, control, 200, start), (1, treatment, 200, start), (2, control, 360, change),
               (2, treatment, 40, change)]
    for phase, variant, n, since in cohorts:
        for i in range(n):
            user, t0 = f"p{phase}-{variant.key}-{i}", since + timedelta(minutes=1 + i % 600)
            exposures.append((variant, user, t0, {}, False))
            events += [(user, "impression", t0 + timedelta(seconds=s + 1)) for s in range(10)]
            events.append((user, "click", t0 + timedelta(seconds=20)))
            if phase == 1:
                events += [(user, "impression", change + timedelta(hours=1, seconds=s)) for s in range(5)]
    add_exposures("default", exp, exposures)
    add_events("default", events)
    yield exp, change
    clear_events("default")


def _ctr(body):
    return {v["variant"]: v for v in next(m for m in body["metrics"] if m["metric"] == "closeup_ctr")["variants"]}


def test_results_default_to_the_current_phase_and_its_weights(phased, experimenter, viewer):
    exp, change = phased
    r = as_user(experimenter).post(f"/api/v1/experiments/{exp.key}/analyze", {}, format="json")
    assert r.status_code == 201, r.content
    body = as_user(viewer).get(f"/api/v1/experiments/{exp.key}/results").json()
    assert body["report_id"] == r.json()["report_id"]
    assert body["phase"]["number"] == 2 and body["phase"]["ended_at"] is None
    assert datetime.fromisoformat(body["phase"]["started_at"]) == change
    # Only the users first exposed in phase 2, checked against 90/10: no mismatch.
    assert body["srm"]["observed"] == {"control": 360, "treatment1": 40}
    assert body["srm"]["expected"] == pytest.approx({"control": 360, "treatment1": 40})
    assert body["srm"]["flagged"] is False
    assert {k: v["users"] for k, v in _ctr(body).items()} == {"control": 360, "treatment1": 40}
    assert body["days_running"] == pytest.approx(1.0, abs=0.01)


def test_phase_one_counts_its_users_up_to_its_end(phased, experimenter, viewer):
    exp, change = phased
    client = as_user(experimenter)
    client.post(f"/api/v1/experiments/{exp.key}/analyze", {}, format="json")
    missing = as_user(viewer).get(f"/api/v1/experiments/{exp.key}/results?phase=1")
    assert missing.status_code == 404 and "Phase 1 has not been analysed" in missing.json()["detail"]

    r = client.post(f"/api/v1/experiments/{exp.key}/analyze?phase=1", {}, format="json")
    assert r.status_code == 201, r.content
    body = as_user(viewer).get(f"/api/v1/experiments/{exp.key}/results?phase=1").json()
    assert body["report_id"] == r.json()["report_id"]
    assert body["phase"]["number"] == 1
    assert datetime.fromisoformat(body["phase"]["ended_at"]) == change
    assert body["srm"]["observed"] == {"control": 200, "treatment1": 200} and body["srm"]["flagged"] is False
    # The 5 impressions each phase-1 user made after the change are phase 2's time: not counted.
    assert {k: (v["users"], v["denominator_sum"]) for k, v in _ctr(body).items()} == {
        "control": (200, 2000), "treatment1": (200, 2000)}
    assert datetime.fromisoformat(str(body["as_of"]).replace("Z", "+00:00")) == change
    # The default is still the current phase's report.
    assert as_user(viewer).get(f"/api/v1/experiments/{exp.key}/results").json()["phase"]["number"] == 2
    assert sorted(AnalysisReport.objects.values_list("phase", flat=True)) == [1, 2]
    listed = as_user(viewer).get(f"/api/v1/experiments/{exp.key}/reports").json()
    assert sorted(x["phase"] for x in listed) == [1, 2]


@pytest.mark.parametrize("query", ["?phase=3", "?phase=0", "?phase=abc"])
def test_unknown_phase_is_400_naming_phase(phased, viewer, experimenter, query):
    exp, _ = phased
    r = as_user(viewer).get(f"/api/v1/experiments/{exp.key}/results{query}")
    assert r.status_code == 400 and r.json()["phase"], r.content
    r = as_user(experimenter).post(f"/api/v1/experiments/{exp.key}/analyze{query}", {}, format="json")
    assert r.status_code == 400 and r.json()["phase"], r.content
    body = as_user(experimenter).post(f"/api/v1/experiments/{exp.key}/analyze", {"phase": 7}, format="json")
    assert body.status_code == 400 and "no phase 7" in body.json()["phase"][0]
    assert not AnalysisReport.objects.exists()


def test_everyone_against_the_new_weights_would_be_flagged(phased, experimenter):
    """Why phases: before them, everyone so far (560/240) was checked against 90/10."""
    from analysis.results import VariantInfo, srm_result

    exp, _ = phased
    variants = [VariantInfo(v.id, v.key, w, v.key == "control") for v, w in zip(exp.variants.all(), (90, 10),
                                                                                   strict=True)]
    ids = {v.key: v.id for v in variants}
    assert srm_result(variants, {ids["control"]: 560, ids["treatment1"]: 240}).flagged is True
