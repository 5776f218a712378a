from analysis.models import AnalysisReport, Metric


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


def latest_report(experiment, status=AnalysisReport.Status.SUCCEEDED) -> AnalysisReport | None:
    return AnalysisReport.objects.filter(experiment=experiment, status=status).order_by("-computed_at", "-id").first()


def latest_failure_since_success(experiment) -> AnalysisReport | None:
    """The last failed run, when no run has succeeded since: what the dashboard alerts on."""
    last = AnalysisReport.objects.filter(experiment=experiment).order_by("-computed_at", "-id").first()
    return last if last and last.status == AnalysisReport.Status.FAILED else None


def reports_of(experiment):
    return AnalysisReport.objects.filter(experiment=experiment).defer("results").order_by("-computed_at", "-id")
