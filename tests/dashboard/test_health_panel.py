"""The results page's health panel and exposure timeline: how fresh the events were, users
seen in two variants, and exposures per day against the plan, from the raw rows."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from analysis.services import run_analysis
from events.models import EventBatch
from experiments import services
from tests.analysis.conftest import add_events, add_exposures
from tests.conftest import as_user

pytestmark = pytest.mark.django_db


def _experiment(owner, per_day: list[int]):
    """Users first exposed over the last len(per_day) days (per_day[i] a variant on day i)."""
    layer = services.create_layer(key="layer-health", name="health")
    experiment = services.create_experiment(
        actor=owner, layer=layer, key="health", name="Health", primary_metric="closeup_ctr",
        variants=[{"key": "control", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}},
                  {"key": "treatment", "weight": 50, "recommender": {"name": "pixie"}}])
    services.transition(experiment, "start", actor=owner)
    experiment.phases.update(started_at=datetime.now(UTC) - timedelta(days=len(per_day) + 1))
    variants = list(experiment.variants.order_by("id"))
    now = datetime.now(UTC)
    rows, events = [], []
    for day, n in enumerate(per_day):
        at = (now - timedelta(days=len(per_day) - 1 - day)).replace(hour=0, minute=30) if day < len(per_day) - 1 \
            else now - timedelta(minutes=30)
        for v in variants:
            for i in range(n):
                user = f"{v.key}-{day}-{i}"
                rows.append((v, user, at, {}, False))
                events += [(user, "impression", at + timedelta(minutes=1))] * 5
                events += [(user, "click", at + timedelta(minutes=2))] * (i % 4 == 0)
    add_exposures("default", experiment, rows)
    add_events("default", events)
    return experiment, variants


def test_users_in_two_variants_and_stale_events_are_said_in_words(experimenter):
    experiment, (control, treatment) = _experiment(experimenter, [300, 200])
    # 20 of the 1,000 users were later reported in the other variant (a client's stale cache).
    later = datetime.now(UTC) - timedelta(minutes=5)
    services.record_exposures([{"experiment_id": experiment.id, "variant_id": treatment.id, "user_id": f"control-0-{i}",
                                "at": later, "attributes": {}, "forced": False} for i in range(20)])
    EventBatch.objects.create(n_accepted=1, status=EventBatch.Status.DONE,
                              processed_at=datetime.now(UTC) - timedelta(hours=2))
    EventBatch.objects.create(n_accepted=1, status=EventBatch.Status.PENDING)
    report = run_analysis(experiment)
    health = report.results["health"]
    assert health["users_in_other_variants"] == 20 and health["batches_waiting"] == 1
    page = as_user(experimenter).get(f"/experiments/{experiment.key}/results").content.decode()
    panel = page.split('id="data-health"')[1].split("</ul>")[0]
    assert "20 users (2.00% of 1,000) were also reported in another variant" in panel
    assert "2.0 h before this analysis ran" in panel and "1 accepted batch not stored yet" in panel
    assert panel.count('badge bad') == 2  # both over their thresholds (1% of users; an hour)


def test_the_timeline_shows_new_users_per_day_and_progress_to_the_plan(experimenter):
    experiment, _ = _experiment(experimenter, [120, 80, 50])
    run_analysis(experiment, backfill_series=True)
    page = as_user(experimenter).get(f"/experiments/{experiment.key}/results").content.decode()
    data = json.loads(page.split('id="exposures-data" type="application/json">')[1].split("</script>")[0])
    assert data["new"]["control"][-3:] == [120, 80, 50] and data["cumulative"]["treatment"][-1] == 250
    assert {m["label"] for m in data["markers"]} == {"phase 1"}
    report = experiment.reports.latest("computed_at").results
    planned = report["power"]["users_per_variant"]
    assert data["planned"] == planned
    progress = page.split('id="exposure-progress">')[1].split("</p>")[0]
    assert f"{min(100, round(250 / planned * 100))}% of the planned sample: 250 of {planned:,} users" in progress
