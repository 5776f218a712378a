"""The closeup defaults page (defaults, rollouts, holdout, history; admins change them)
and the ship dialog (the variant the results favour preselected, warnings in words)."""

from datetime import UTC, datetime, timedelta

import pytest

from analysis.services import run_analysis
from experiments import services
from experiments.models import Holdout, SurfaceDefaultChange
from tests.analysis.conftest import add_events, add_exposures
from tests.conftest import as_user

pytestmark = pytest.mark.django_db


def test_admins_change_a_stage_and_start_and_end_a_holdout_from_the_page(client, admin_user, experimenter):
    client.force_login(admin_user)
    page = client.get("/surfaces/closeup").content.decode()
    assert "No holdout" in page and "Change a stage" in page and "No change yet" in page
    r = client.post("/surfaces/closeup", {"what": "default", "stage": "ranking", "name": "ranker", "params": "{}"},
                    follow=True)
    assert "Saved." in r.content.decode()
    change = SurfaceDefaultChange.objects.get()
    assert (change.stage, change.after, change.actor) == ("ranking", {"name": "ranker", "params": {}}, admin_user)
    # Bad input: the service's message, nothing changed.
    r = client.post("/surfaces/closeup", {"what": "default", "stage": "ranking", "name": "popularity"}, follow=True)
    assert "cannot serve the ranking stage" in r.content.decode() and SurfaceDefaultChange.objects.count() == 1
    r = client.post("/surfaces/closeup", {"what": "default", "stage": "whole", "name": "pixie", "params": "{oops"},
                    follow=True)
    assert "Parameters are a JSON object" in r.content.decode()

    r = client.post("/surfaces/closeup", {"what": "holdout-start", "percent": "5"}, follow=True)
    page = r.content.decode()
    assert "<strong>5.0%</strong> of users are held back" in page and "Its report" in page
    assert Holdout.objects.get(is_active=True).percent == 5
    r = client.post("/surfaces/closeup", {"what": "holdout-start", "percent": "10"}, follow=True)
    assert "end it first" in r.content.decode()
    r = client.post("/surfaces/closeup", {"what": "holdout-start", "percent": "eighty"}, follow=True)
    assert "in percent, e.g. 5" in r.content.decode()
    client.post("/surfaces/closeup", {"what": "holdout-end"})
    assert not Holdout.objects.filter(is_active=True).exists()

    # Others read it, and are neither offered nor allowed changes.
    client.force_login(experimenter)
    page = client.get("/surfaces/closeup").content.decode()
    assert "ranker" in page and "Change a stage" not in page and "Start a holdout" not in page
    assert client.post("/surfaces/closeup", {"what": "holdout-end"}).status_code == 403
    assert client.get("/surfaces/homefeed").status_code == 404


def _running(owner, key="ship-me"):
    layer = services.create_layer(key=f"layer-{key}", name="Layer")
    experiment = services.create_experiment(
        actor=owner, layer=layer, key=key, name="Ship me", primary_metric="closeup_ctr",
        guardrail_metrics=["hide_rate"],
        variants=[{"key": "control", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}},
                  {"key": "better", "weight": 50, "recommender": {"name": "pixie"}}])
    return services.transition(experiment, "start", actor=owner)


def test_the_ship_dialog_warns_in_words_when_nothing_says_ship(experimenter):
    experiment = _running(experimenter)
    page = as_user(experimenter).get(f"/experiments/{experiment.key}/ship").content.decode()
    assert "There are no results yet" in page
    assert '<option value="control" selected>' in page


def test_the_ship_dialog_preselects_a_clear_winner(experimenter):
    experiment = _running(experimenter)
    variants = {v.key: v for v in experiment.variants.all()}
    exposed, seen = datetime.now(UTC) - timedelta(hours=2), datetime.now(UTC) - timedelta(hours=1)
    rows, events = [], []
    # One clicker in 10 against one in 4; 160 clicks in control, past the minimum data (150).
    for key, every in (("control", 10), ("better", 4)):
        for i in range(800):
            user = f"{key}-{i}"
            rows.append((variants[key], user, exposed, {}, False))
            events += [(user, "impression", seen)] * 10 + ([(user, "click", seen)] * 2 if i % every == 0 else [])
    add_exposures("default", experiment, rows)
    add_events("default", events)
    run_analysis(experiment)
    page = as_user(experimenter).get(f"/experiments/{experiment.key}/ship").content.decode()
    assert "Recommended: better." in page and "significantly better than control" in page
    assert '<option value="better" selected>' in page


def test_re_running_the_analysis_keeps_the_toggles(experimenter):
    experiment = _running(experimenter, key="toggles")
    client = as_user(experimenter)
    page = client.get(f"/experiments/{experiment.key}/results?mode=sequential&cuped=1").content.decode()
    assert 'name="mode" value="sequential"' in page and 'name="cuped" value="1"' in page
    r = client.post(f"/experiments/{experiment.key}/analyze", {"mode": "sequential", "cuped": "1"})
    assert r.status_code == 302 and "mode=sequential" in r["Location"] and "cuped=1" in r["Location"]
