"""What the experiments and analysis apps announce, turned into alerts."""

import logging

from django.db import transaction

from alerts import conditions, services
from analysis.models import AnalysisReport
from analysis.notifications import analysis_finished
from experiments import services as experiment_services
from experiments.models import Experiment
from experiments.notifications import lifecycle_changed

logger = logging.getLogger(__name__)

ACTION_WORDS = {"start": "started", "pause": "paused", "resume": "resumed", "stop": "stopped", "ship": "shipped"}


def on_lifecycle(sender, experiment_id, action, status, actor_id=None, note="", variant=None, **kwargs):
    experiment = Experiment.objects.select_related("owner").filter(pk=experiment_id).first()
    if experiment is None:
        return
    from django.contrib.auth import get_user_model

    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    who = actor.get_username() if actor else "Pinpoint"
    summary = f"{experiment.name} was {ACTION_WORDS.get(action, action)} by {who}" + (
        f" ({variant})" if action == "ship" and variant else "") + (f": {note}" if note else ".")
    with transaction.atomic():
        services.notify(conditions.LIFECYCLE, experiment, summary,
                        {"action": action, "status": status, "actor": actor.get_username() if actor else None,
                         "note": note, "variant": variant})


def on_analysis(sender, report_id, **kwargs):
    report = AnalysisReport.objects.select_related("experiment", "experiment__owner").filter(pk=report_id).first()
    if report is None:
        return
    experiment = report.experiment
    if report.status == AnalysisReport.Status.FAILED:
        reason = (report.error or "no reason recorded").splitlines()[0]
        with transaction.atomic():
            services.notify(conditions.ANALYSIS_FAILED, experiment,
                            f"The analysis of {experiment.name} failed: {reason}",
                            {"report": report.pk, "error": report.error, "trigger": report.trigger})
        return
    previous = (AnalysisReport.objects.filter(experiment=experiment, status=AnalysisReport.Status.SUCCEEDED,
                                              phase=report.phase, computed_at__lte=report.computed_at)
                .exclude(pk=report.pk).order_by("-computed_at", "-id").first())
    alerts = conditions.from_reports(previous.results if previous else None, report.results or {})
    with transaction.atomic():
        for alert in alerts:
            services.notify(alert.event, experiment, alert.summary, {**alert.data, "report": report.pk})
        regressed = [a for a in alerts if a.event == conditions.GUARDRAIL_REGRESSED]
        if regressed and experiment.pause_on_guardrail_regression and experiment.status == Experiment.Status.RUNNING:
            # The lifecycle alert that follows carries the reason, as does the audit log.
            experiment_services.transition(experiment, "pause", actor=None,
                                           note="paused automatically: " + " ".join(a.summary for a in regressed))


def connect():
    lifecycle_changed.connect(on_lifecycle, dispatch_uid="alerts-lifecycle")
    analysis_finished.connect(on_analysis, dispatch_uid="alerts-analysis")
