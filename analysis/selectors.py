import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings as django_settings
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce

from analysis import offline_online as oo
from analysis.metric_kinds import registry as metric_kinds
from analysis.models import AnalysisReport, Metric
from analysis.report import Report
from analysis.stats import power as power_stats
from analysis.sufficient_statistics import MetricSpec, baseline_moments, plan, product_pairs
from experiments.assignment import BUCKETS
from experiments.models import Experiment, Phase
from recommenders import selectors as recommender_selectors


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


BASELINE_DAYS = 14


@dataclass(frozen=True)
class SurfaceBaseline:
    """The primary metric on the experiment's surface before launch: its value and per-user
    variance over the users with events in [since, until), as the analysis computes them,
    and the users a day the experiment would get (the surface's distinct users over the
    days with events, times the experiment's traffic share)."""

    metric: str
    mean: float
    unit_variance: float
    users: int
    days_with_events: int
    traffic_share: float
    users_per_day: float
    since: datetime
    until: datetime


def traffic_share(experiment) -> float:
    """The share of the surface's users the experiment takes: its slice of its layer's
    buckets times its traffic percent (targeting and holdouts not subtracted)."""
    return max(0.0, (experiment.bucket_end - experiment.bucket_start) / BUCKETS) * experiment.traffic_percent / 100


def surface_baseline(experiment, now: datetime) -> SurfaceBaseline | None:
    """The last BASELINE_DAYS days before now (or before the start, once started); None
    without the primary metric, without events, or with a value the metric cannot give."""
    metric = Metric.objects.filter(key=experiment.primary_metric).first()
    if metric is None:
        return None
    until = min(now, experiment.started_at) if experiment.started_at else now
    since = until - timedelta(days=BASELINE_DAYS)
    spec = MetricSpec.of(metric)
    variables, layouts = plan([spec], cuped=False)
    found = baseline_moments(variables, product_pairs(layouts), since, until)
    if found.moments is None or found.moments.n < power_stats.MIN_USERS:
        return None
    value = metric_kinds.get(metric.kind).value(found.moments.select(layouts[metric.key].post))
    if not all(isinstance(x, float | int) and math.isfinite(x) for x in (value.value, value.unit_variance)):
        return None
    share = traffic_share(experiment)
    per_day = found.moments.n / max(1, found.days_with_events) * share
    return SurfaceBaseline(metric.key, float(value.value), float(value.unit_variance), found.moments.n,
                           found.days_with_events, share, per_day, since, until)


class NoBaseline(Exception):
    """Nothing to take the baseline from: no report, no events, nothing given."""


def power_plan(experiment, p: dict, now: datetime) -> dict:
    """GET …/power's answer: the plan at the experiment's split (or `weights`), every
    treatment against the control under the report's correction (or `correction`), from
    the baseline given, else the latest report's, else the surface's last 14 days."""
    report = latest_report(experiment)
    observed = Report.from_json(report.results or {}).power if report else None
    variants = [v for v in experiment.variants.all() if v.is_control or v.weight > 0]
    control = next((v for v in variants if v.is_control), variants[0] if variants else None)
    arms = [control, *(v for v in variants if v is not control)] if control else []
    weights = p.get("weights") or [v.weight for v in arms] or [1, 1]
    shares = power_stats.normalized_weights(weights) or (0.5, 0.5)
    correction = p.get("correction") or django_settings.ANALYSIS_CORRECTION
    mean, variance, source, baseline = p.get("baseline_mean"), p.get("unit_variance"), "given", None
    if mean is None or variance is None:
        if observed is not None and observed.baseline_mean and observed.unit_variance:
            source = "given" if mean is not None or variance is not None else "report"
            mean = observed.baseline_mean if mean is None else mean
            variance = observed.unit_variance if variance is None else variance
        else:
            baseline = surface_baseline(experiment, now)
            if baseline is None:
                raise NoBaseline
            source = "last_14_days"
            mean = baseline.mean if mean is None else mean
            variance = baseline.unit_variance if variance is None else variance
    if not mean or not variance:
        raise NoBaseline
    mde = p.get("mde", experiment.minimum_detectable_effect)
    if "users_per_day" in p:
        per_day = p["users_per_day"]
    elif observed is not None and source != "last_14_days":
        per_day = observed.users_per_variant_per_day or 0
    else:
        per_day = (baseline.users_per_day * shares[0]) if baseline else 0
    total_per_day = per_day / shares[0] if per_day else 0
    alpha, target = p["alpha"], p["power"]
    needed, smallest = power_stats.needed_sizes(mde, mean, variance, shares, alpha, target, correction) or (None, None)
    m = len(shares) - 1
    days = power_stats.days_to_reach(smallest, total_per_day, shares)
    out = {
        "metric": experiment.primary_metric, "mde": mde, "alpha": alpha, "power": target,
        "baseline_mean": mean, "unit_variance": variance, "baseline_source": source,
        "users_per_variant": smallest, "users_per_variant_per_day": per_day, "days_needed": days,
        "weights": ({v.key: w for v, w in zip(arms, shares, strict=True)} if len(arms) == len(shares)
                    else {"control" if i == 0 else f"treatment_{i}": w for i, w in enumerate(shares)}),
        "comparisons": m, "correction": correction,
        "per_comparison_alpha": power_stats.per_comparison_alpha(alpha, m, correction),
        "users_needed": needed, "users_needed_smallest_arm": smallest, "users_per_day": total_per_day,
        "baseline": None if baseline is None else {
            "since": baseline.since.isoformat(), "until": baseline.until.isoformat(), "users": baseline.users,
            "days_with_events": baseline.days_with_events, "traffic_share": baseline.traffic_share},
        "observed": observed.to_json() if observed else None,
    }
    return out


FINISHED = (Experiment.Status.STOPPED, Experiment.Status.SHIPPED)
UNFINISHED = (Experiment.Status.RUNNING, Experiment.Status.PAUSED)
MAX_OFFLINE_ONLINE_EXPERIMENTS = 500


def offline_online(include_running: bool = False) -> tuple[list[oo.Row], oo.Summary]:
    """Every finished experiment's treatments (running and paused ones too when asked),
    newest first: offline NDCG change beside the online result of the latest report of its
    current phase, and the summary over them. A fixed number of queries."""
    statuses = FINISHED + (UNFINISHED if include_running else ())
    experiments = list(Experiment.objects.filter(status__in=statuses)
                       .order_by(Coalesce("stopped_at", "started_at").desc(nulls_last=True), "-id")
                       [:MAX_OFFLINE_ONLINE_EXPERIMENTS])
    offline = recommender_selectors.offline_of_experiments(experiments)
    reports = latest_reports(e.pk for e in experiments)
    rows = []
    for e in experiments:
        report = reports[e.pk][0]
        result = Report.from_json(report.results or {}) if report else None
        rows += oo.rows_of(e.key, e.name, e.status, e.design, offline[e.pk], result)
    return rows, oo.summarize(rows)
