from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce

from analysis.models import AnalysisReport, Metric
from experiments.models import Experiment, Phase


def metrics_for(experiment) -> list[tuple[Metric, str]]:
    """Every metric an experiment's report shows, with its role: the primary first,
    then the guardrails (named by the experiment or flagged on the metric), then the rest."""
    metrics = {m.key: m for m in Metric.objects.all()}
    guardrails = set(experiment.guardrail_metrics or []) | {k for k, m in metrics.items() if m.is_guardrail}
    out = []
    if experiment.primary_metric in metrics:
        out.append((metrics[experiment.primary_metric], "primary"))
    out += [(metrics[k], "guardrail") for k in sorted(guardrails) if k in metrics and k != experiment.primary_metric]
    seen = {m.key for m, _ in out}
    out += [(m, "secondary") for k, m in sorted(metrics.items()) if k not in seen]
    return out


CURRENT = "current"  # the experiment's current phase, whatever its number


def _of_phase(experiment, phase):
    """An experiment's reports of one phase: `phase` a number, CURRENT, or None (an
    experiment without phases, whose reports count every user)."""
    if phase == CURRENT:
        phase = experiment.phases.order_by("-number").values_list("number", flat=True).first()
    reports = AnalysisReport.objects.filter(experiment=experiment)
    return reports.filter(phase__isnull=True) if phase is None else reports.filter(phase=phase)


def latest_report(experiment, status=AnalysisReport.Status.SUCCEEDED, phase=CURRENT) -> AnalysisReport | None:
    """The newest report of a phase (by default the current one): a phase's results are
    never another phase's."""
    return _of_phase(experiment, phase).filter(status=status).order_by("-computed_at", "-id").first()


def latest_failure_since_success(experiment, phase=CURRENT) -> AnalysisReport | None:
    """The last failed run, when no run has succeeded since: what the dashboard alerts on."""
    last = _of_phase(experiment, phase).order_by("-computed_at", "-id").first()
    return last if last and last.status == AnalysisReport.Status.FAILED else None


def latest_reports(experiment_ids) -> dict[int, tuple[AnalysisReport | None, AnalysisReport | None]]:
    """For many experiments at once, what `latest_report` and `latest_failure_since_success`
    give for one (of the current phase): {experiment id: (latest succeeded report, failed run since it or None)}.
    Two queries whatever the number of experiments (the list page showed 200 with 401)."""
    # Of each experiment's current phase (0 stands for "no phases", as a report's null phase).
    current = Phase.objects.filter(experiment=OuterRef("pk")).order_by("-number").values("number")[:1]
    newest = (AnalysisReport.objects.filter(experiment=OuterRef("pk"))
              .annotate(phase_or_0=Coalesce("phase", 0)).filter(phase_or_0=OuterRef("current_phase"))
              .order_by("-computed_at", "-id"))
    latest = list(Experiment.objects.filter(pk__in=list(experiment_ids)).annotate(
        current_phase=Coalesce(Subquery(current), 0),
    ).annotate(
        succeeded_id=Subquery(newest.filter(status=AnalysisReport.Status.SUCCEEDED).values("id")[:1]),
        last_id=Subquery(newest.values("id")[:1]),
    ).values_list("pk", "succeeded_id", "last_id"))
    reports = AnalysisReport.objects.in_bulk({i for _, s, last in latest for i in (s, last) if i is not None})
    out = {}
    for pk, succeeded_id, last_id in latest:
        last = reports.get(last_id)
        out[pk] = (reports.get(succeeded_id), last if last and last.status == AnalysisReport.Status.FAILED else None)
    return out


def reports_of(experiment):
    return AnalysisReport.objects.filter(experiment=experiment).defer("results").order_by("-computed_at", "-id")
