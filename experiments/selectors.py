"""Reads: the running configuration, experiments for the API."""

import dataclasses
import logging
from datetime import datetime

from django.db.models import Prefetch

from experiments import assignment as a
from experiments import holdouts, rollouts, surfaces
from experiments.models import (
    ConfigVersion,
    Experiment,
    Exposure,
    Holdout,
    Layer,
    Rollout,
    SurfaceDefault,
    Variant,
    VariantServing,
)

logger = logging.getLogger(__name__)

LIVE_STATUSES = (Experiment.Status.DRAFT, Experiment.Status.RUNNING, Experiment.Status.PAUSED)


def config_version() -> int:
    return ConfigVersion.objects.values_list("version", flat=True).first() or 0


def experiment_config(experiment: Experiment) -> a.ExperimentConfig:
    variants = list(experiment.variants.all())
    forced = {}
    for v in variants:
        for user_id in v.forced_user_ids:
            forced[str(user_id)] = v.key
    return a.ExperimentConfig(
        id=experiment.id,
        key=experiment.key,
        layer=experiment.layer.key,
        salt=experiment.salt,
        bucket_start=experiment.bucket_start,
        bucket_end=experiment.bucket_end,
        traffic_percent=experiment.traffic_percent,
        allocation=tuple((int(s), int(e), str(k)) for s, e, k in experiment.allocation),
        variants={v.key: a.VariantConfig(id=v.id, key=v.key, recommender=v.recommender, is_control=v.is_control)
                  for v in variants},
        targeting=experiment.targeting or {},
        forced=forced,
        stage=experiment.layer.stage,
        design=experiment.design,
    )


def load_assignment_config() -> a.AssignmentConfig:
    """Everything assignment needs, from the database, as one immutable value."""
    version = config_version()  # read first: a change racing the load bumps it again
    running = (
        # A holdout's own experiment is not assigned through its layer: serving checks the holdout.
        Experiment.objects.filter(status=Experiment.Status.RUNNING, holdout_of__isnull=True)
        .select_related("layer")
        .prefetch_related(Prefetch("variants", queryset=Variant.objects.order_by("id")))
    )
    by_layer: dict[int, list[a.ExperimentConfig]] = {}
    for experiment in running:
        by_layer.setdefault(experiment.layer_id, []).append(experiment_config(experiment))
    holdouts = {h.surface: _holdout_config(h) for h in Holdout.objects.filter(is_active=True)}
    surfaces: dict[str, list] = {}
    for layer in Layer.objects.filter(id__in=by_layer).order_by("id"):  # the pipeline's order: oldest layer first
        experiments = _without_overlaps(layer.key, by_layer[layer.id])
        surfaces.setdefault(layer.surface, []).append((layer.key, layer.salt, experiments))
    built = {s: a.build_surface(layers, holdouts.get(s)) for s, layers in surfaces.items()}
    for surface, holdout in holdouts.items():
        built.setdefault(surface, a.SurfaceConfig(layers=(), holdout=holdout))
    defaults: dict[str, dict] = {}
    for row in SurfaceDefault.objects.all():
        defaults.setdefault(row.surface, {})[row.stage] = row.recommender
    rollouts: dict[str, dict] = {}
    for r in Rollout.objects.filter(status=Rollout.Status.ROLLING):
        rollouts.setdefault(r.surface, {})[r.stage] = a.RolloutConfig(salt=r.salt, percent=r.percent,
                                                                      recommender=r.recommender)
    for surface in defaults.keys() | rollouts.keys():
        built[surface] = dataclasses.replace(built.get(surface, a.EMPTY_SURFACE), defaults=defaults.get(surface, {}),
                                             rollouts=rollouts.get(surface, {}))
    return a.AssignmentConfig(version=version, surfaces=built)


def _holdout_config(holdout: Holdout) -> a.HoldoutConfig:
    variants = dict(Variant.objects.filter(experiment_id=holdout.experiment_id).values_list("key", "id")) \
        if holdout.experiment_id else {}
    return a.HoldoutConfig(salt=holdout.salt, percent=holdout.percent, defaults=holdout.defaults or {},
                           experiment_id=holdout.experiment_id, held_back_variant_id=variants.get("held_back"),
                           launched_variant_id=variants.get("launched"))


def _without_overlaps(layer_key, experiments):
    # The API refuses overlapping slices, but the admin site can save anything: serve
    # the first experiment of an overlapping pair and say so, rather than fail all.
    kept = []
    for e in sorted(experiments, key=lambda e: (e.bucket_start, e.id)):
        if kept and e.bucket_start < kept[-1].bucket_end:
            logger.error("experiment %s overlaps %s in layer %s; not serving it", e.key, kept[-1].key, layer_key)
            continue
        kept.append(e)
    return kept


def experiments_for_api():
    return Experiment.objects.select_related("layer", "owner", "rollout").prefetch_related("variants", "phases")


@dataclasses.dataclass(frozen=True)
class PhaseWindow:
    """One phase as analysis reads it: users first exposed in [started_at, ended_at),
    compared against `weights`. ended_at is the next phase's start; None for the current phase."""

    number: int
    started_at: datetime
    ended_at: datetime | None
    weights: dict[str, float]
    traffic_percent: float


def ordered_weights(experiment: Experiment, weights: dict) -> dict[str, float]:
    """In the variants' order (PostgreSQL's jsonb keeps its own)."""
    order = [v.key for v in sorted(experiment.variants.all(), key=lambda v: v.id)]
    return {k: weights[k] for k in sorted(weights, key=lambda k: order.index(k) if k in order else len(order))}


class UnknownPhase(LookupError):
    pass


def phase_windows(experiment: Experiment) -> list[PhaseWindow]:
    phases = sorted(experiment.phases.all(), key=lambda p: p.number)  # all(): a prefetch serves it
    out = []
    for i, p in enumerate(phases):
        ended = phases[i + 1].started_at if i + 1 < len(phases) else None
        out.append(PhaseWindow(p.number, p.started_at, ended, ordered_weights(experiment, p.weights),
                               p.traffic_percent))
    return out


def phase_window(experiment: Experiment, number: int | None = None) -> PhaseWindow | None:
    """Phase `number`, or the current (latest) one when None; None for an experiment
    that has no phases (never started). UnknownPhase, with the reason, for a number it lacks."""
    windows = phase_windows(experiment)
    if number is None:
        return windows[-1] if windows else None
    for w in windows:
        if w.number == number:
            return w
    if not windows:
        raise UnknownPhase(f"{experiment.key} has no phases yet: it has not been started.")
    raise UnknownPhase(f"{experiment.key} has no phase {number}; its phases are 1 to {windows[-1].number}.")


def users_in_other_variants(experiment: Experiment, since: datetime | None, until: datetime | None,
                            as_of: datetime) -> int:
    """Users counted in an analysis (first exposed in [since, until), either open, up to
    as_of; QA users left out) who were also reported in another variant."""
    qs = Exposure.objects.filter(experiment=experiment, forced=False, other_variant=True,
                                 first_exposed_at__lte=as_of)
    if since is not None:
        qs = qs.filter(first_exposed_at__gte=since)
    if until is not None:
        qs = qs.filter(first_exposed_at__lt=until)
    return qs.count()


def timeline(experiment: Experiment) -> list[dict]:
    """Phases and the traffic ramps inside them, oldest first, for the dashboard."""
    rows = []
    for w, phase in zip(phase_windows(experiment), sorted(experiment.phases.all(), key=lambda p: p.number),
                        strict=True):
        rows.append({"kind": "phase", "number": w.number, "at": w.started_at, "ended_at": w.ended_at,
                     "weights": w.weights, "traffic_percent": w.traffic_percent})
        rows += [{"kind": "ramp", "number": w.number, "at": datetime.fromisoformat(r["at"]), "from": r["from"],
                  "to": r["to"]} for r in phase.ramps]
    return rows


def taken_slices(layer: Layer, exclude_id: int | None = None) -> list[tuple[int, int, str]]:
    qs = Experiment.objects.filter(layer=layer, status__in=LIVE_STATUSES)
    if exclude_id is not None:
        qs = qs.exclude(id=exclude_id)
    return sorted(qs.values_list("bucket_start", "bucket_end", "key"))


def free_slices(taken: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """The gaps between taken slices of a layer's 10,000 buckets, in order."""
    gaps, at = [], 0
    for start, end, _ in sorted(taken):
        if start > at:
            gaps.append((at, start))
        at = max(at, end)
    if at < a.BUCKETS:
        gaps.append((at, a.BUCKETS))
    return gaps


def share_text(start: int, end: int) -> str:
    """A slice as people read it: the share of the layer's users, e.g. "50–100% of the layer"."""
    return f"{start / 100:g}–{end / 100:g}% of the layer"


def serving_by_variant(experiment: Experiment) -> list[dict]:
    """Per variant, closeup requests its config shaped and how many of them fell back."""
    rows = {v.key: [0, 0] for v in experiment.variants.all()}
    for key, requests, fallbacks in (VariantServing.objects.filter(variant__experiment=experiment)
                                     .values_list("variant__key", "requests", "fallbacks")):
        rows[key][0] += requests
        rows[key][1] += fallbacks
    return [{"variant": key, "requests": n, "fallbacks": f, "fallback_rate": (f / n) if n else None}
            for key, (n, f) in rows.items()]


def describe_surface(surface: str) -> dict:
    """What a surface serves users in no experiment: the defaults per stage with their
    history, the rollouts in progress, and the holdout."""
    in_progress = Rollout.objects.filter(surface=surface, status=Rollout.Status.ROLLING).order_by("stage")
    return {**surfaces.describe(surface), "rollouts": [rollouts.describe(r) for r in in_progress],
            "holdout": holdouts.describe(holdouts.active(surface))}


def running_experiments() -> list[Experiment]:
    return list(Experiment.objects.filter(status=Experiment.Status.RUNNING, holdout_of__isnull=True)
                .select_related("layer"))


def overshadowed_by(experiment: Experiment, running: list[Experiment] | None = None) -> list[dict]:
    """The running experiments of other layers of the surface that decide the closeup
    before this one for the users both include (serving/closeup.py, `_one_per_stage`):
    one of an older layer of the same stage, or any whole-list one when this decides a
    stage. This experiment shapes no list for those users, and records no exposure for
    them, while the other runs. `share`: the part of this experiment's users concerned
    (layers hash independently, so it is the other's share of its own layer)."""
    if experiment.layer.key == holdouts.reserved_layer_key(experiment.surface):  # measured apart from the layers
        return []
    stage = experiment.layer.stage
    others = [o for o in (running_experiments() if running is None else running)
              if o.surface == experiment.surface and o.layer_id != experiment.layer_id]
    out = []
    for other in others:
        older_same_stage = other.layer.stage == stage and other.layer_id < experiment.layer_id
        whole_over_stage = other.layer.stage == "whole" and stage != "whole"
        if older_same_stage or whole_over_stage:
            share = (other.bucket_end - other.bucket_start) / a.BUCKETS * other.traffic_percent / 100
            out.append({"experiment": other.key, "layer": other.layer.key, "stage": other.layer.stage,
                        "share": round(share, 4)})
    return sorted(out, key=lambda o: -o["share"])
