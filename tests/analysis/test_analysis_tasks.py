"""The scheduled analysis through a real Celery worker."""

from datetime import UTC, datetime, timedelta

import pytest

from analysis.models import AnalysisReport
from analysis.tasks import analyze_running_experiments
from tests import processes
from tests.analysis.conftest import add_events, add_exposures, clear_events, make_experiment

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_scheduled_task_analyses_every_running_experiment_and_skips_the_rest(celery_worker_process):
    now = datetime.now(UTC)
    running, (c, t) = make_experiment("default", "running-one")
    draft, _ = make_experiment("default", "draft-one", status="draft")
    try:
        add_exposures("default", running, [(c if i % 2 else t, f"u{i}", now - timedelta(hours=2), {}, False)
                                           for i in range(200)])
        add_events("default", [(f"u{i}", "impression", now - timedelta(hours=1)) for i in range(200)]
                   + [(f"u{i}", "click", now - timedelta(minutes=30)) for i in range(0, 200, 7)])
        analyze_running_experiments.delay("daily")
        processes.wait_until(
            lambda: AnalysisReport.objects.filter(experiment=running, status="succeeded").exists(),
            timeout=60, what="the worker to store a report",
        )
        report = AnalysisReport.objects.get(experiment=running)
        assert report.trigger == "daily" and report.results["users"] == 200
        ctr = next(b for b in report.results["metrics"] if b["metric"] == "closeup_ctr")
        assert sum(v["numerator_sum"] for v in ctr["variants"]) == len(range(0, 200, 7))
        assert not AnalysisReport.objects.filter(experiment=draft).exists()
    finally:
        clear_events("default")
