"""Running an analysis: moments from the database, statistics in pure code, one report
row written at the end (or one failure row): never a half-written report."""

import dataclasses
import logging
import time
from contextlib import contextmanager
from datetime import UTC, datetime

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, connection, transaction

from analysis import results as R
from analysis import selectors
from analysis.models import AnalysisReport, Metric
from analysis.notifications import analysis_finished
from analysis.report import (
    AnalysisSettings,
    DailySeries,
    DataHealth,
    InterleavingResult,
    MetricCap,
    Report,
    ReportPhase,
    VariantServing,
)
from analysis.stats.minimum_data import MinimumData
from analysis.sufficient_statistics import (
    EVERYONE,
    MetricSpec,
    Window,
    daily_moments,
    plan,
    preference_counts,
    product_pairs,
    variant_moments,
)
from events.selectors import event_pipeline_state
from experiments.models import Experiment
from experiments.selectors import (
    PhaseWindow,
    UnknownPhase,
    phase_window,
    serving_by_variant,
    users_in_other_variants,
)

logger = logging.getLogger(__name__)

STEPS = ("per-variant statistics", "daily series", "segments", "tests", "save")


class AnalysisFailed(Exception):
    def __init__(self, report: AnalysisReport):
        super().__init__(report.error)
        self.report = report


class AnalysisBusy(Exception):
    """Another process is analysing this experiment right now."""


def analysis_settings(experiment: Experiment, segment_by: str | None = None,
                      cuped: bool = True) -> AnalysisSettings:
    mde = experiment.minimum_detectable_effect or 0.02
    return AnalysisSettings(alpha=django_settings.ANALYSIS_ALPHA, correction=django_settings.ANALYSIS_CORRECTION,
                      cuped=cuped, sequential_tau=mde, minimum_detectable_effect=mde, segment_by=segment_by)


def days_running(experiment: Experiment, as_of: datetime) -> float | None:
    """Days from the start to `as_of` (or to the stop, if earlier); None before the start."""
    if not experiment.started_at:
        return None
    end = min(as_of, experiment.stopped_at) if experiment.stopped_at else as_of
    return max(0.0, (end - experiment.started_at).total_seconds() / 86400)


def phase_to_analyse(experiment: Experiment, number: int | None = None) -> PhaseWindow | None:
    """Phase `number`, by default the current one; None for an experiment without phases
    (never started): then every user counts. An unknown number is a field error."""
    try:
        return phase_window(experiment, number)
    except UnknownPhase as exc:
        raise ValidationError({"phase": [str(exc)]}) from exc


def _window(phase: PhaseWindow | None) -> Window:
    if phase is None:
        return EVERYONE
    # Phase 1 takes everyone before phase 2: an exposure stamped a moment before the
    # start (a serving process's clock, a test's backfill) is still the experiment's.
    return Window(phase.started_at if phase.number > 1 else None, phase.ended_at)


def _capped(as_of: datetime, phase: PhaseWindow | None) -> datetime:
    """A past phase is read as it stood when it ended: its users' events after the next
    phase began (when some of them may have moved variant) do not count."""
    return min(as_of, phase.ended_at) if phase and phase.ended_at else as_of


def _days_in_phase(experiment: Experiment, phase: PhaseWindow | None, as_of: datetime) -> float:
    if phase is None:
        return days_running(experiment, as_of) or 0.0
    end = min(as_of, experiment.stopped_at) if experiment.stopped_at else as_of
    return max(0.0, (end - phase.started_at).total_seconds() / 86400)


def _series(experiment, primary, variables, variants, moments, as_of, settings, backfill: bool,
            phase: PhaseWindow | None = None, caps: dict[int, float | None] | None = None) -> DailySeries:
    """The primary metric's daily cumulative series.

    Each past day's point is the state its last analysis saw, carried over from the
    previous report (as GrowthBook and Statsig chart their stored daily snapshots), and
    today's point comes from this run's moments: no extra pass over the events. The
    first analysis (or `backfill`) recomputes every day in one query instead."""
    today = as_of.astimezone(UTC).date()
    previous = None if backfill else selectors.latest_report(experiment, phase=phase.number if phase else None)
    carried = None
    if previous is not None and previous.as_of <= as_of:
        old = Report.from_json(previous.results or {}).series
        if old is not None and old.metric == primary.key:
            carried = old.before(today)
    if carried is None:
        daily = daily_moments(experiment.id, [variables[i] for i in primary.post], as_of, window=_window(phase),
                              caps={j: (caps or {}).get(i) for j, i in enumerate(primary.post)})
        return R.daily_series(primary, variants, daily.days, daily.by_variant, settings, source="backfill")
    now = {vid: [m.select(primary.post)] for vid, m in moments.items()}
    point = R.daily_series(primary, variants, [today], now, settings,
                           previous=DailySeries(metric=primary.key, days=carried))
    return DailySeries(metric=primary.key, days=carried + point.days, source="incremental")


def events_word(metric: Metric) -> str:
    """What a metric's numerator counts, in words: "clicks", "saves or clicks", "users with a click"."""
    types = list(metric.numerator_types)
    if metric.aggregation == Metric.Aggregation.ANY:
        return "users with " + " or ".join(f"{'an' if t[0] in 'aeiou' else 'a'} {t}" for t in types)
    return " or ".join(f"{t}s" for t in types)


def guardrail_margin(experiment: Experiment, metric: Metric) -> float | None:
    """The experiment's own margin for a guardrail (a template's, or set at creation),
    else the metric's; null in either means no non-inferiority test."""
    margins = experiment.guardrail_margins or {}
    return margins[metric.key] if metric.key in margins else metric.guardrail_margin


def compute(experiment: Experiment, as_of: datetime, segment_by: str | None = None, cuped: bool = True,
            progress=None, backfill_series: bool = False, phase: PhaseWindow | None = None) -> Report:
    """The report of an experiment's phase (None: every user, for an experiment without
    phases) as of a time. Runs one aggregate query for all metrics, one for the primary
    metric's daily series, and one more for segments."""
    step = progress or (lambda name: None)
    as_of = _capped(as_of, phase)
    window = _window(phase)
    settings = analysis_settings(experiment, segment_by, cuped)
    chosen = selectors.metrics_for(experiment)
    variables, layouts = plan([MetricSpec.of(m) for m, _ in chosen], cuped=cuped)
    pairs = product_pairs(layouts)
    metrics = [R.MetricInfo(m.key, m.name, m.kind, m.direction, role, tuple(layouts[m.key].post),
                            tuple(layouts[m.key].pre), guardrail_margin=guardrail_margin(experiment, m),
                            minimum=MinimumData(m.min_users_per_variant, m.min_events_per_variant),
                            events_word=events_word(m),
                            covariates=tuple((name, kind, tuple(at)) for name, kind, at in layouts[m.key].covariates))
               for m, role in chosen]
    # The SRM check expects the split of the phase analysed, not today's weights.
    weights = phase.weights if phase else {}
    variants = [R.VariantInfo(v.id, v.key, weights.get(v.key, v.weight), v.is_control)
                for v in experiment.variants.all()]
    if variants and not any(v.is_control for v in variants):
        variants[0] = R.VariantInfo(variants[0].id, variants[0].key, variants[0].weight, True)

    raw = variant_moments(experiment.id, variables, pairs, as_of, window=window)
    moments = {vid: m for (vid, _), m in raw.items()}
    metrics = [dataclasses.replace(info, cap=_cap(info, variables, raw.caps)) for info in metrics]
    step(STEPS[0])

    series = None
    primary = next((m for m in metrics if m.role == "primary"), None)
    if primary is not None:
        series = _series(experiment, primary, variables, variants, moments, as_of, settings, backfill_series, phase,
                         raw.caps)
    step(STEPS[1])

    segments = None
    if segment_by:
        by_segment: dict[str, dict[int, object]] = {}
        for (vid, seg), m in variant_moments(experiment.id, variables, pairs, as_of, segment_by=segment_by,
                                             window=window).items():
            by_segment.setdefault("(none)" if seg is None else seg, {})[vid] = m
        segments = by_segment
    step(STEPS[2])

    covered = None
    if phase is not None:
        covered = ReportPhase(number=phase.number, started_at=phase.started_at.isoformat(),
                              ended_at=phase.ended_at.isoformat() if phase.ended_at else None)
    report = R.build_report(experiment.key, variants, metrics, moments, settings,
                            _days_in_phase(experiment, phase, as_of), series, segments, phase=covered)
    if experiment.design == "interleaving":
        report = dataclasses.replace(report, design="interleaving",
                                     interleaving=_interleaving(experiment, variants, as_of, window, settings))
    step(STEPS[3])
    return report


def _interleaving(experiment: Experiment, variants: list[R.VariantInfo], as_of: datetime, window: Window,
                  settings: AnalysisSettings) -> InterleavingResult | None:
    control = next((v for v in variants if v.is_control), None)
    treatment = next((v for v in variants if not v.is_control), None)
    if control is None or treatment is None:
        return None
    daily = preference_counts(experiment.id, control.id, treatment.id, as_of, window=window)
    return R.interleaving_result(control, treatment, daily.days, daily.counts, settings.alpha)


def _cap(metric: R.MetricInfo, variables, caps: dict[int, float | None]) -> MetricCap | None:
    """What the report says of a metric's capping: None when none of its counts is capped."""
    capped = [i for i in metric.post if variables[i].cap_percentile is not None]
    if not capped:
        return None
    values = [caps.get(i) if variables[i].cap_percentile is not None else None for i in metric.post]
    return MetricCap(percentile=variables[capped[0]].cap_percentile, value=values[0],
                     denominator_value=values[1] if len(values) > 1 else None)


@contextmanager
def _exclusive(experiment_id: int):
    """On PostgreSQL, a session advisory lock per experiment: a redelivered task or a
    second click on "re-run" does not run the same analysis twice at once."""
    if connection.vendor != "postgresql":
        yield
        return
    key = 0x5050_0000 + experiment_id
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        if not cursor.fetchone()[0]:
            raise AnalysisBusy(f"experiment {experiment_id} is being analysed")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def run_analysis(experiment: Experiment, trigger: str = AnalysisReport.Trigger.MANUAL, actor=None,
                 segment_by: str | None = None, cuped: bool = True, as_of: datetime | None = None,
                 progress=None, backfill_series: bool = False, phase: int | None = None) -> AnalysisReport:
    """Analyse one phase (by default the current one) and store a report. An unknown
    phase is a ValidationError on `phase`, before anything runs. On failure a failed
    report with the reason is stored and AnalysisFailed raised; a lost database
    connection propagates (nothing can be recorded then, and the caller retries)."""
    window = phase_to_analyse(experiment, phase)
    started = datetime.now(UTC)
    as_of = _capped(as_of or started, window)
    clock = time.perf_counter()
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    fields = {"experiment": experiment, "trigger": trigger, "requested_by": user, "started_at": started,
              "as_of": as_of, "phase": window.number if window else None}
    with _exclusive(experiment.id):
        try:
            result = compute(experiment, as_of, segment_by=segment_by, cuped=cuped, progress=progress,
                             backfill_series=backfill_series, phase=window)
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:
            logger.exception("analysis of %s failed", experiment.key)
            report = AnalysisReport.objects.create(
                status=AnalysisReport.Status.FAILED, computed_at=datetime.now(UTC),
                duration_ms=int((time.perf_counter() - clock) * 1000), error=f"{type(exc).__name__}: {exc}",
                settings=analysis_settings(experiment, segment_by, cuped).to_json(), **fields,
            )
            _announce(report)
            raise AnalysisFailed(report) from exc
        report = AnalysisReport.objects.create(
            status=AnalysisReport.Status.SUCCEEDED, computed_at=datetime.now(UTC),
            duration_ms=int((time.perf_counter() - clock) * 1000), settings=result.settings.to_json(),
            # Beside the statistics: how often each variant's recommender fell back while
            # serving, how fresh the events were, who was seen in two variants.
            results=dataclasses.replace(result, serving=tuple(
                VariantServing(**row) for row in serving_by_variant(experiment)),
                health=data_health(experiment, window, as_of)).to_json(),
            **fields,
        )
    _announce(report)
    if progress:
        progress(STEPS[4])
    return report


def _announce(report: AnalysisReport) -> None:
    """Alerts listen (analysis.failed, srm.flagged, …), once the report is committed."""
    report_id = report.pk
    transaction.on_commit(lambda: analysis_finished.send_robust(sender=AnalysisReport, report_id=report_id),
                          robust=True)


def data_health(experiment: Experiment, window: PhaseWindow | None, as_of: datetime) -> DataHealth:
    stored, counted = event_pipeline_state(), _window(window)
    return DataHealth(
        events_stored_until=stored.stored_until.isoformat() if stored.stored_until else None,
        batches_waiting=stored.batches_waiting,
        oldest_waiting_since=stored.oldest_waiting_since.isoformat() if stored.oldest_waiting_since else None,
        # The same users the statistics counted (phase 1 reaches back before its start).
        users_in_other_variants=users_in_other_variants(experiment, counted.start, counted.end, as_of),
    )


def report_body(report: AnalysisReport) -> dict:
    """The results document of a stored report, as the API returns it: the stored JSON
    as it is (a report stored by an earlier version is served as it was), with the run's facts."""
    body = dict(report.results or {})
    body.update({"experiment": report.experiment.key, "report_id": report.pk, "status": report.status,
                 "trigger": report.trigger, "computed_at": report.computed_at, "as_of": report.as_of,
                 "duration_ms": report.duration_ms})
    if report.status == AnalysisReport.Status.FAILED:
        body["error"] = report.error
    return body
