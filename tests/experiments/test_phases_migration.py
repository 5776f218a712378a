"""experiments/0009 and analysis/0003 on a database from before phases: every started
experiment gets phase 1 from its start with its weights, and its stored reports are phase 1's."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE_PHASES = [("experiments", "0008_surface_defaults"), ("analysis", "0002_builtin_metrics_and_schedules")]


def _migrate(targets, state_at):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(state_at).apps


@pytest.mark.django_db(transaction=True)
def test_started_experiments_get_phase_one_and_their_reports_with_it():
    old = _migrate(BEFORE_PHASES, state_at=BEFORE_PHASES)
    Layer, Experiment = old.get_model("experiments", "Layer"), old.get_model("experiments", "Experiment")
    Variant, AnalysisReport = old.get_model("experiments", "Variant"), old.get_model("analysis", "AnalysisReport")
    started = datetime(2026, 11, 20, 9, tzinfo=UTC)
    layer = Layer.objects.create(key="pre-phases", name="L", salt="s")
    running = Experiment.objects.create(key="old-running", name="r", layer=layer, bucket_start=0, bucket_end=5000,
                                        status="running", started_at=started, traffic_percent=30, salt="a")
    draft = Experiment.objects.create(key="old-draft", name="d", layer=layer, bucket_start=5000, bucket_end=10000,
                                      salt="b")
    for e in (running, draft):
        Variant.objects.create(experiment=e, key="control", weight=60, is_control=True)
        Variant.objects.create(experiment=e, key="treatment", weight=40)
    at = started + timedelta(days=1)
    report = AnalysisReport.objects.create(experiment=running, status="succeeded", started_at=at, computed_at=at,
                                           as_of=at, results={})

    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    _migrate(latest, state_at=latest)

    from analysis.models import AnalysisReport as Report
    from experiments.models import Phase

    (phase,) = Phase.objects.filter(experiment_id=running.pk)
    assert (phase.number, phase.started_at, phase.weights, phase.traffic_percent, phase.ramps) == (
        1, started, {"control": 60, "treatment": 40}, 30, [])
    assert not Phase.objects.filter(experiment_id=draft.pk).exists()
    assert Report.objects.get(pk=report.pk).phase == 1
