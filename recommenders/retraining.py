"""Scheduled retraining: build new versions from the last RETRAIN_WINDOW_DAYS of
interactions and logged engagements, measure each on the day after the window (held
out: never trained on) beside the version in use, keep the ones that pass the gate
(recommenders.gate) servable and the others with their numbers but never served, and,
where the surface's RetrainPolicy says so, start an experiment of the new version of
the recommender the surface serves against the version in use."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from recommenders import evaluation, gate, registry, services
from recommenders.base import Recommender
from recommenders.data import InteractionData
from recommenders.models import BuildJob, ModelVersion, RetrainPolicy
from recommenders.selectors import held_out_engagements, load_interaction_data
from recommenders.serving import _index_map

logger = logging.getLogger(__name__)

K = 10
# Enough users for NDCG@10 to within about ±0.005, and a bound on the gate's time
# when a day has more: a fixed sample (by user id hash), the same for both versions.
GATE_MAX_USERS = 5000


class RetrainError(Exception):
    """A retrain that cannot go on (nothing to learn from); the job fails with this message."""


@dataclass(frozen=True)
class Window:
    train_start: datetime
    holdout_start: datetime  # the training window's end
    holdout_end: datetime

    def as_dict(self) -> dict:
        return {"train_start": self.train_start.isoformat(), "holdout_start": self.holdout_start.isoformat(),
                "holdout_end": self.holdout_end.isoformat()}


def window_ending(now: datetime) -> Window:
    holdout_start = now - timedelta(days=settings.RETRAIN_HOLDOUT_DAYS)
    return Window(holdout_start - timedelta(days=settings.RETRAIN_WINDOW_DAYS), holdout_start, now)


def gate_rule() -> gate.GateRule:
    return gate.GateRule(max_ndcg_drop=settings.RETRAIN_GATE_MAX_NDCG_DROP,
                         max_coverage_drop=settings.RETRAIN_GATE_MAX_COVERAGE_DROP,
                         min_users=settings.RETRAIN_GATE_MIN_USERS)


def relevant_for(data: InteractionData, held: dict[str, set[int]]) -> dict[int, set[int]]:
    """Held-out pins per user index, for users the training window knows (a history to
    recommend from) and pins they had not engaged with in it, as in the offline protocol."""
    relevant = {}
    for user_id, pin_ids in held.items():
        u = data.user_index(user_id)
        if u is None:
            continue
        seen = set(data.user_pin[u].indices.tolist())
        pins = {i for i in (data.pin_index(p) for p in pin_ids) if i is not None and i not in seen}
        if pins and seen:
            relevant[u] = pins
    if len(relevant) > GATE_MAX_USERS:
        def order(u):
            return hashlib.blake2b(data.user_ids[u].encode(), digest_size=8).digest()

        relevant = {u: relevant[u] for u in sorted(relevant, key=order)[:GATE_MAX_USERS]}
    return relevant


def offline_metrics(recommender: Recommender, data: InteractionData, relevant: dict[int, set[int]],
                    catalog_pin_ids: np.ndarray | None = None) -> gate.OfflineMetrics:
    """NDCG@10 and coverage of `recommender`'s lists for the held-out users. A version
    built on another catalog (`catalog_pin_ids`, its pins by index) is asked in its own
    indexes and answers translated back; pins it does not know are dropped."""
    to_own = from_own = None
    if catalog_pin_ids is not None:
        # The same translation a serving process makes for a version built on other pins.
        to_own, from_own = _index_map(data.pin_ids, catalog_pin_ids), _index_map(catalog_pin_ids, data.pin_ids)
    lists = {}
    for u in relevant:
        history = data.history(data.user_ids[u])
        if to_own is not None:
            history = [(int(to_own[p]), w) for p, w in history if to_own[p] >= 0]
        pins = [p for p, _ in recommender.for_user(history, K)]
        if from_own is not None:
            pins = [int(from_own[p]) for p in pins if from_own[p] >= 0]
        lists[u] = pins
    m = evaluation.ranking_metrics(lists, relevant, K, data.n_pins)
    return gate.OfflineMetrics(ndcg_at_10=m.ndcg, coverage=m.coverage, users=m.users)


def _catalog_pin_ids(row: ModelVersion, data: InteractionData) -> np.ndarray | None:
    """The pins of the catalog `row` was built on, when it is not the training window's."""
    if row.metrics.get("catalog") == services.catalog_fingerprint(data):
        return None
    catalog = ModelVersion.objects.filter(name=services.CATALOG, version=row.version).first()
    if catalog is None:
        raise FileNotFoundError(f"no catalog was kept for {row.name}@{row.version}")
    return services.load_catalog(Path(catalog.path)).pin_ids


def schedule_daily(now: datetime | None = None) -> BuildJob | None:
    """The beat's entry: a retrain job, unless retraining is off or one was made in the
    last 20 hours (the beat may fire twice around a restart)."""
    now = now or timezone.now()
    if not settings.RETRAIN_ENABLED:
        return None
    recent = BuildJob.objects.filter(kind=BuildJob.Kind.RETRAIN, created_at__gte=now - timedelta(hours=20))
    if recent.exclude(state=BuildJob.State.FAILED).exists():
        return None
    return BuildJob.objects.create(kind=BuildJob.Kind.RETRAIN, names=list(settings.RETRAIN_RECOMMENDERS))


def retrain(job: BuildJob | None = None, progress=None, now: datetime | None = None,
            surface: str = "closeup") -> dict:
    """Build, gate, and maybe start an experiment; returns the job's summary."""
    now = now or timezone.now()
    window = window_ending(now)
    names = (job.names if job and job.names else None) or list(settings.RETRAIN_RECOMMENDERS) or registry.names()
    if progress:
        # Loading, the catalog and each build, each gate, the experiment.
        progress.total(2 + 2 * len(names) + 1)
        progress.doing(f"loading {settings.RETRAIN_WINDOW_DAYS} days of interactions and engagements")
    data = load_interaction_data(since=window.train_start, until=window.holdout_start, min_logged=0)
    if data.user_pin.nnz == 0:
        raise RetrainError(f"no interactions or logged engagements between {window.train_start:%Y-%m-%d %H:%M} "
                           f"and {window.holdout_start:%Y-%m-%d %H:%M} UTC to train on")
    if progress:
        progress.done(f"loaded {data.user_pin.nnz:,} engagements of {len(data.user_ids):,} users")
    rows = services.build_all(names, data=data, activate=False, job=job,
                              progress=(lambda name: progress.done(f"built {name}")) if progress else None)
    version = rows[0].version
    relevant = relevant_for(data, held_out_engagements(window.holdout_start, window.holdout_end))
    rule = gate_rule()
    verdicts = {}
    for row in rows:
        if row.name == services.CATALOG:
            continue
        if progress:
            progress.doing(f"gating {row.name} on {len(relevant):,} held-out users")
        verdicts[row.name] = _gate_one(row, data, relevant, rule, window)
        if progress:
            progress.done(f"gated {row.name}: {'passed' if verdicts[row.name]['passed'] else 'failed'}")
    experiment, note = start_experiment(surface, {n: v for n, v in verdicts.items() if v["passed"]}, version)
    if progress:
        progress.done(f"experiment {experiment}" if experiment else note)
    return {"version": version, "window": window.as_dict(), "holdout_users": len(relevant),
            "training_users": len(data.user_ids), "training_engagements": int(data.user_pin.nnz),
            "gate": verdicts, "experiment": experiment, "experiment_note": note}


def _gate_one(row: ModelVersion, data: InteractionData, relevant, rule: gate.GateRule, window: Window) -> dict:
    holdout = {"holdout_start": window.holdout_start.isoformat(), "holdout_end": window.holdout_end.isoformat()}
    candidate = offline_metrics(Recommender.load(Path(row.path)), data, relevant)
    baseline_row = ModelVersion.objects.filter(name=row.name, is_active=True).first()
    baseline, baseline_note = None, "no version in use yet"
    if baseline_row is not None:
        try:
            baseline = offline_metrics(Recommender.load(Path(baseline_row.path)), data, relevant,
                                       _catalog_pin_ids(baseline_row, data))
            baseline_note = ""
        except (OSError, ValueError) as exc:
            # Nothing to compare with is not a reason to keep a good version from users;
            # the gate then checks only that it could be measured.
            baseline_note = f"the version in use could not be measured ({type(exc).__name__}: {exc})"
            logger.warning("retrain gate: %s@%s: %s", row.name, baseline_row.version, baseline_note)
        if baseline is not None and not baseline_row.offline:
            baseline_row.offline = {**baseline.as_dict(), **holdout}
            baseline_row.save(update_fields=["offline"])
    result = gate.decide(candidate, baseline, rule)
    row.offline = {**candidate.as_dict(), **holdout}
    row.gate = {**result.as_dict(), "baseline_version": baseline_row.version if baseline_row else None,
                "baseline": baseline.as_dict() if baseline else None, "baseline_note": baseline_note,
                "rule": {"max_ndcg_drop": rule.max_ndcg_drop, "max_coverage_drop": rule.max_coverage_drop,
                         "min_users": rule.min_users}}
    row.servable = result.passed
    row.save(update_fields=["offline", "gate", "servable"])
    return {"passed": result.passed, "version": row.version, "ndcg_at_10": candidate.ndcg_at_10,
            "coverage": candidate.coverage, "baseline_version": row.gate["baseline_version"],
            "baseline_ndcg_at_10": baseline.ndcg_at_10 if baseline else None, "reasons": list(result.reasons)}


def served_stage(surface: str) -> tuple[str, dict]:
    """The stage whose recommender decides the order users see, and its config: the
    ranking stage when something ranks, else the whole list."""
    from experiments import surfaces

    defaults = surfaces.effective_defaults(surfaces.stored_defaults(surface))
    return ("ranking", defaults["ranking"]) if defaults["ranking"] else ("whole", defaults["whole"])


def start_experiment(surface: str, passed: dict[str, dict], version: str) -> tuple[str | None, str]:
    """(the started experiment's key or None, what happened). Starts one experiment:
    the new version of the recommender the surface serves against the version in use,
    in a layer of its own that earlier retrain experiments used; one still running
    there is stopped, superseded by the newer candidate."""
    from experiments import services as experiment_services
    from experiments.models import Experiment, Layer

    policy = RetrainPolicy.objects.filter(surface=surface).first()
    if policy is None or not policy.auto_experiment:
        return None, f"no experiment: automatic experiments are off for {surface} (its retrain policy)"
    stage, config = served_stage(surface)
    name = config.get("name")
    if name not in passed:
        return None, f"no experiment: {name} (serving the {stage} stage) has no new version that passed its gate"
    in_use = config.get("version") or passed[name]["baseline_version"]
    if not in_use:
        return None, f"no experiment: {name} has no version in use to compare with"
    key = f"retrain-{name}-{version}".lower().replace("_", "-")[:64]
    params = config.get("params") or {}
    variants = [
        {"key": "in-use", "weight": 50, "is_control": True, "name": f"{name}@{in_use} (in use)",
         "recommender": {"name": name, "params": params, "version": in_use}},
        {"key": "retrained", "weight": 50, "name": f"{name}@{version} (retrained)",
         "recommender": {"name": name, "params": params, "version": version}},
    ]
    design = policy.design
    try:
        with transaction.atomic():
            layer, _ = Layer.objects.get_or_create(
                key=f"retrain-{surface}-{stage}",
                defaults={"name": f"Retrained {stage} versions on {surface}", "surface": surface, "stage": stage})
            for older in Experiment.objects.filter(layer=layer, status__in=[Experiment.Status.RUNNING,
                                                                            Experiment.Status.PAUSED]):
                experiment_services.transition(older, "stop", actor=None)
            experiment = experiment_services.create_experiment(
                actor=None, layer=layer, variants=variants, key=key, design=design,
                name=f"Retrained {name} ({version}) vs in use ({in_use})",
                hypothesis=f"The {name} version retrained on the last {settings.RETRAIN_WINDOW_DAYS} days passed its "
                           f"offline gate; online it should do at least as well as the version in use.",
                traffic_percent=policy.traffic_percent)
            experiment_services.transition(experiment, "start", actor=None)
    except ValidationError as exc:
        messages = "; ".join(f"{field}: {' '.join(errs)}" for field, errs in exc.message_dict.items())
        logger.warning("retrain: could not start %s: %s", key, messages)
        return None, f"no experiment: {messages}"
    return experiment.key, f"started {experiment.key} ({design}, {policy.traffic_percent:g}% of the layer)"
