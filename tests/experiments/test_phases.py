"""Phases: the first start opens phase 1, a weight change after it (running or paused)
opens the next, and a traffic ramp stays inside the phase, marked for the timeline."""

import pytest

from experiments.models import AuditLog, Experiment, Phase
from experiments.selectors import timeline
from tests.conftest import as_user
from tests.experiments.conftest import experiment_body

pytestmark = pytest.mark.django_db
URL = "/api/v1/experiments/ranker-v2"


def test_first_start_opens_phase_one_with_the_weights_and_traffic(experimenter, layer):
    client = as_user(experimenter)
    body = experiment_body(traffic_percent=20)
    assert client.post("/api/v1/experiments", body, format="json").status_code == 201
    assert client.get(URL).json()["phases"] == []
    started = client.post(f"{URL}/start").json()
    assert [(p["number"], p["weights"], p["traffic_percent"], p["ended_at"]) for p in started["phases"]] == [
        (1, {"control": 50, "ranker": 50}, 20, None)]
    assert started["phases"][0]["started_at"] == started["started_at"]
    # Pausing and resuming is the same phase.
    client.post(f"{URL}/pause")
    assert len(client.post(f"{URL}/start").json()["phases"]) == 1


def test_weight_change_while_running_opens_phase_two(experimenter, running_experiment):
    client = as_user(experimenter)
    r = client.patch(URL, {"weights": {"control": 10, "ranker": 90}}, format="json")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "running"
    assert [v["weight"] for v in body["variants"]] == [10, 90]
    one, two = body["phases"]
    assert (one["number"], one["weights"]) == (1, {"control": 50, "ranker": 50})
    assert (two["number"], two["weights"], two["traffic_percent"]) == (2, {"control": 10, "ranker": 90}, 100)
    assert one["ended_at"] == two["started_at"] and two["ended_at"] is None
    # Rebalanced, not reshuffled: only the 40% who had to move did.
    assert Experiment.objects.get(pk=running_experiment.pk).allocation == [[0, 1000, "control"],
                                                                          [1000, 10000, "ranker"]]
    audit = AuditLog.objects.filter(action="update").get()
    assert (audit.before["phase"], audit.after["phase"]) == (1, 2)
    # The same weights again change nothing.
    assert len(client.patch(URL, {"weights": {"control": 10, "ranker": 90}}, format="json").json()["phases"]) == 2


def test_weight_changes_while_paused_open_one_phase(experimenter, running_experiment):
    client = as_user(experimenter)
    client.post(f"{URL}/pause")
    client.patch(URL, {"weights": {"control": 40, "ranker": 60}}, format="json")
    phases = client.patch(URL, {"weights": {"control": 30, "ranker": 70}}, format="json").json()["phases"]
    # Nobody was exposed between the two changes: one new phase, with the last weights.
    assert [(p["number"], p["weights"]) for p in phases] == [(1, {"control": 50, "ranker": 50}),
                                                            (2, {"control": 30, "ranker": 70})]
    client.post(f"{URL}/start")
    client.post(f"{URL}/pause")
    phases = client.patch(URL, {"weights": {"control": 50, "ranker": 50}}, format="json").json()["phases"]
    assert [p["number"] for p in phases] == [1, 2, 3]


def test_ramp_stays_in_the_phase_and_shows_on_the_timeline(experimenter, running_experiment):
    client = as_user(experimenter)
    r = client.patch(URL, {"traffic_percent": 40}, format="json")
    assert r.status_code == 200
    (phase,) = r.json()["phases"]
    assert phase["number"] == 1 and phase["traffic_percent"] == 100
    assert [(x["from"], x["to"]) for x in phase["ramps"]] == [(100, 40)]
    client.patch(URL, {"weights": {"control": 20, "ranker": 80}}, format="json")
    client.patch(URL, {"traffic_percent": 60}, format="json")
    rows = timeline(Experiment.objects.get(pk=running_experiment.pk))
    assert [(r["kind"], r["number"]) for r in rows] == [("phase", 1), ("ramp", 1), ("phase", 2), ("ramp", 2)]
    assert (rows[2]["traffic_percent"], rows[3]["from"], rows[3]["to"]) == (40, 40, 60)


def test_draft_weight_changes_open_no_phase(experimenter, layer):
    client = as_user(experimenter)
    client.post("/api/v1/experiments", experiment_body(), format="json")
    client.patch(URL, {"weights": {"control": 30, "ranker": 70}, "traffic_percent": 10}, format="json")
    assert not Phase.objects.exists()
    (phase,) = client.post(f"{URL}/start").json()["phases"]
    assert (phase["weights"], phase["traffic_percent"], phase["ramps"]) == ({"control": 30, "ranker": 70}, 10, [])


def test_bad_weights_while_running_are_400_and_open_no_phase(experimenter, running_experiment):
    r = as_user(experimenter).patch(URL, {"weights": {"control": 10, "ranker": 80}}, format="json")
    assert r.status_code == 400 and "sum to 100" in r.json()["weights"][0]
    assert Phase.objects.filter(experiment=running_experiment).count() == 1
