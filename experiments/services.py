"""Writes and workflows: creating, changing and running experiments, recording exposures.

Business rules live here, so the API and the dashboard apply the same ones with the
same messages. Every change to an experiment writes an AuditLog row; the configuration
version is bumped by the models' save signals (experiments/signals.py), in the same
transaction as the change.
"""

import json
import math
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from experiments import assignment as a
from experiments import holdouts, references, rollouts, surfaces, templates
from experiments.models import (
    BUCKETS,
    DESIGNS,
    INTERLEAVING_STAGES,
    STAGES,
    AuditLog,
    ConfigVersion,
    Experiment,
    Holdout,
    Layer,
    Phase,
    SurfaceDefault,
    Variant,
)
from experiments.notifications import lifecycle_changed
from experiments.selectors import free_slices, share_text, taken_slices

Status = Experiment.Status

# action -> (statuses it may start from, status it leads to)
TRANSITIONS = {
    "start": ((Status.DRAFT, Status.PAUSED), Status.RUNNING),
    "pause": ((Status.RUNNING,), Status.PAUSED),
    "stop": ((Status.RUNNING, Status.PAUSED), Status.STOPPED),
    "ship": ((Status.RUNNING, Status.PAUSED, Status.STOPPED), Status.SHIPPED),
}

# What PATCH may change, by status. Key, surface, layer, salt and the variant set never change.
ALWAYS_EDITABLE = {"name", "description", "hypothesis", "end_at", "pause_on_guardrail_regression"}
EDITABLE = {
    Status.DRAFT: ALWAYS_EDITABLE | {"traffic_percent", "weights", "forced_user_ids", "targeting", "layer_buckets",
                                     "primary_metric", "guardrail_metrics", "guardrail_margins",
                                     "minimum_detectable_effect"},
    # Weights may change while running: the change opens a new phase, analysed on its own.
    Status.RUNNING: ALWAYS_EDITABLE | {"traffic_percent", "weights", "forced_user_ids"},
    Status.PAUSED: ALWAYS_EDITABLE | {"traffic_percent", "weights", "forced_user_ids"},
    Status.STOPPED: ALWAYS_EDITABLE,
    Status.SHIPPED: ALWAYS_EDITABLE,
}
NEVER_EDITABLE = {"key", "surface", "layer", "salt", "variants", "status"}


def bump_config_version() -> None:
    if not ConfigVersion.objects.filter(pk=1).update(version=F("version") + 1):
        ConfigVersion.objects.get_or_create(pk=1, defaults={"version": 1})


def snapshot(experiment: Experiment) -> dict:
    return {
        "key": experiment.key,
        "name": experiment.name,
        "status": experiment.status,
        "design": experiment.design,
        "layer": experiment.layer.key,
        "layer_buckets": [experiment.bucket_start, experiment.bucket_end],
        "traffic_percent": experiment.traffic_percent,
        "targeting": experiment.targeting,
        "description": experiment.description,
        "hypothesis": experiment.hypothesis,
        "end_at": experiment.end_at.isoformat() if experiment.end_at else None,
        "primary_metric": experiment.primary_metric,
        "guardrail_metrics": experiment.guardrail_metrics,
        "minimum_detectable_effect": experiment.minimum_detectable_effect,
        "pause_on_guardrail_regression": experiment.pause_on_guardrail_regression,
        "guardrail_margins": experiment.guardrail_margins,
        "template": experiment.template,
        "allocation": experiment.allocation,
        "shipped_variant": experiment.shipped_variant,
        "phase": experiment.phases.order_by("-number").values_list("number", flat=True).first(),
        "variants": [
            {"key": v.key, "weight": v.weight, "is_control": v.is_control, "recommender": v.recommender,
             "forced_user_ids": v.forced_user_ids}
            for v in experiment.variants.order_by("id")
        ],
    }


def _audit(experiment, actor, action, before, after, note: str = ""):
    AuditLog.objects.create(
        experiment=experiment, actor=actor if getattr(actor, "pk", None) else None,
        action=action, before=before, after=after, note=note[:500],
    )


# --- Validation ------------------------------------------------------------------


def _validate_recommender(config, path: str, errors: dict, stage: str):
    if not isinstance(config, dict) or not isinstance(config.get("name"), str) or not config["name"].strip():
        errors.setdefault(path, []).append('Must be {"name": <recommender name>, "params": {...}}.')
        return
    params = config.get("params", {})
    if not isinstance(params, dict):
        errors.setdefault(path, []).append("params must be an object.")
        return
    unknown = set(config) - {"name", "params", "version"}
    if unknown:
        errors.setdefault(path, []).append(f"Unknown keys: {', '.join(sorted(unknown))}.")
        return
    messages = references.recommender_errors(config["name"], params, stage)
    if not messages and "version" in config:
        messages = references.version_errors(config["name"], config["version"])
    for message in messages:
        errors.setdefault(path, []).append(message)


def validate_variants(variants: list[dict], stage: str = "whole") -> dict:
    errors: dict[str, list[str]] = {}
    if len(variants) < 2:
        errors["variants"] = ["An experiment needs at least two variants."]
        return errors
    keys = [v["key"] for v in variants]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        errors.setdefault("variants", []).append(f"Variant keys must be unique; repeated: {', '.join(duplicates)}.")
    controls = sum(1 for v in variants if v.get("is_control"))
    if controls != 1:
        errors.setdefault("variants", []).append(f"Exactly one variant must be the control; found {controls}.")
    errors.update(_weight_errors({v["key"]: v["weight"] for v in variants}))
    seen_forced: dict[str, str] = {}
    for i, v in enumerate(variants):
        _validate_recommender(v.get("recommender"), f"variants[{i}].recommender", errors, stage)
        for user_id in v.get("forced_user_ids", []):
            if user_id in seen_forced and seen_forced[user_id] != v["key"]:
                errors.setdefault("variants", []).append(
                    f"User {user_id!r} is forced into both {seen_forced[user_id]} and {v['key']}."
                )
            seen_forced[user_id] = v["key"]
    return errors


def _weight_errors(weights: dict[str, float]) -> dict:
    if any(w <= 0 for w in weights.values()):
        return {"weights": ["Every variant's weight must be greater than 0."]}
    total = sum(weights.values())
    if not math.isclose(total, 100, abs_tol=1e-6):
        return {"weights": [f"Weights must sum to 100; they sum to {total:g}."]}
    return {}


def _validate_slice(layer: Layer, buckets, exclude_id=None) -> tuple[tuple[int, int] | None, dict]:
    taken = taken_slices(layer, exclude_id=exclude_id)
    owners = ", ".join(f"{k} ({share_text(s, e)}, buckets [{s}, {e}))" for s, e, k in taken)
    free = free_slices(taken)
    free_text = ("free: " + ", ".join(f"{share_text(s, e)} (buckets [{s}, {e}))" for s, e in free)) if free \
        else "nothing is free: choose another layer or create one, or stop an experiment in this one"
    if buckets is None:
        if taken:
            return None, {"layer_buckets": [
                f"Layer {layer.key} is partly taken by {owners}; give a free slice ({free_text})."]}
        return (0, BUCKETS), {}
    start, end = buckets
    if not (0 <= start < end <= BUCKETS):
        return None, {"layer_buckets": [f"Must be [start, end) with 0 <= start < end <= {BUCKETS}."]}
    clashes = [f"{k} [{s}, {e})" for s, e, k in taken if start < e and s < end]
    if clashes:
        return None, {"layer_buckets": [
            f"{share_text(start, end)} overlaps {', '.join(clashes)} in layer {layer.key} ({free_text})."]}
    return (start, end), {}


def _raise(errors: dict):
    if errors:
        raise ValidationError(errors)


# --- Layers and holdouts --------------------------------------------------------


@transaction.atomic
def create_layer(*, key: str, name: str, surface: str = "closeup", stage: str = "whole") -> Layer:
    if Layer.objects.filter(key=key).exists():
        raise ValidationError({"key": [f"A layer with key {key!r} already exists."]})
    if stage not in {s for s, _ in STAGES}:
        raise ValidationError({"stage": [f"Must be one of: {', '.join(s for s, _ in STAGES)}."]})
    return Layer.objects.create(key=key, name=name, surface=surface, stage=stage)


@transaction.atomic
def set_holdout(*, surface: str, percent: float, is_active: bool = True, actor=None) -> Holdout | None:
    """The surface's holdout at `percent`: kept if it already is, else the old one ends
    (its report stays) and a new one starts, since one measurement cannot span two shares."""
    current = holdouts.active(surface)
    if not is_active:
        return holdouts.end(surface=surface, actor=actor) if current else None
    if current is not None and current.percent == percent:
        return current
    if current is not None:
        holdouts.end(surface=surface, actor=actor)
    return holdouts.start(surface=surface, percent=percent, actor=actor)


# --- Experiments ---------------------------------------------------------------


@transaction.atomic
def create_experiment(*, actor, layer: Layer, variants: list[dict], layer_buckets=None, **fields) -> Experiment:
    errors: dict = {}
    if Experiment.objects.filter(key=fields["key"]).exists():
        errors["key"] = [f"An experiment with key {fields['key']!r} already exists."]
    surface = fields.pop("surface", layer.surface)
    if surface != layer.surface:
        errors["surface"] = [f"Layer {layer.key} belongs to the {layer.surface} surface, not {surface}."]
    if layer.key == holdouts.reserved_layer_key(layer.surface):
        errors["layer"] = [f"Layer {layer.key} is reserved for the surface holdout's measurement; choose another."]
    errors.update(validate_variants(variants, layer.stage))
    errors.update(_design_errors(fields.get("design", "ab"), layer, variants))
    errors.update(_targeting_errors(fields.get("targeting", {})))
    errors.update(_metric_errors(fields))
    errors.update(_margin_errors(fields, list(fields.get("guardrail_metrics") or [])))
    # Lock the layer row: two creations racing for the same slice must not both win.
    Layer.objects.select_for_update().filter(pk=layer.pk).first()
    slice_, slice_errors = _validate_slice(layer, layer_buckets)
    errors.update(slice_errors)
    _raise(errors)
    experiment = Experiment.objects.create(
        layer=layer, surface=layer.surface, bucket_start=slice_[0], bucket_end=slice_[1],
        owner=actor if getattr(actor, "pk", None) else None,
        allocation=[list(r) for r in a.initial_allocation({v["key"]: v["weight"] for v in variants})],
        **fields,
    )
    Variant.objects.bulk_create([
        Variant(experiment=experiment, key=v["key"], name=v.get("name", ""), weight=v["weight"],
                is_control=bool(v.get("is_control")), recommender=v["recommender"],
                forced_user_ids=[str(u) for u in v.get("forced_user_ids", [])])
        for v in variants
    ])
    _audit(experiment, actor, "create", None, snapshot(experiment))
    return experiment


def _design_errors(design: str, layer: Layer, variants: list[dict]) -> dict:
    """Interleaving merges two ranked lists of the same request: two variants, and a
    layer whose variants decide the order (ranking) or the whole list; a retrieval
    layer's variants only choose candidates, which another stage then orders."""
    if design not in {d for d, _ in DESIGNS}:
        return {"design": [f"Must be one of: {', '.join(d for d, _ in DESIGNS)}."]}
    if design != "interleaving":
        return {}
    errors = {}
    if len(variants) != 2:
        errors["variants"] = [f"An interleaving experiment compares exactly two rankers (a control and a treatment); "
                              f"got {len(variants)} variant{'s' if len(variants) != 1 else ''}."]
    if layer.stage not in INTERLEAVING_STAGES:
        errors["layer"] = [f"Layer {layer.key} is a {layer.stage} layer: interleaving merges two ranked lists, so it "
                           f"needs a layer of the ranking or whole stage."]
    return errors


def _margin_errors(fields: dict, guardrails) -> dict:
    margins = fields.get("guardrail_margins")
    if margins is None:
        return {}
    if not isinstance(margins, dict):
        return {"guardrail_margins": ["An object: guardrail metric -> relative margin (or null)."]}
    messages = [f"{k} is not one of this experiment's guardrails ({', '.join(guardrails) or 'none'})."
                for k in margins if k not in guardrails]
    messages += [f"{k}: a fraction from 0 to 1, or null." for k, v in margins.items() if not templates.is_margin(v)]
    return {"guardrail_margins": messages} if messages else {}


def _metric_errors(fields: dict) -> dict:
    """Metrics must exist (analysis.Metric) for the experiment to be analysable."""
    named = ([fields["primary_metric"]] if "primary_metric" in fields else []) + list(fields.get("guardrail_metrics")
                                                                                    or [])
    if not named:
        return {}
    known = references.known_metrics(named)
    errors = {}
    if "primary_metric" in fields and fields["primary_metric"] not in known:
        errors["primary_metric"] = [f"Unknown metric {fields['primary_metric']!r}; see /api/v1/metrics."]
    unknown = [m for m in fields.get("guardrail_metrics") or [] if m not in known]
    if unknown:
        errors["guardrail_metrics"] = [f"Unknown metrics: {', '.join(unknown)}; see /api/v1/metrics."]
    return errors


def _targeting_errors(targeting) -> dict:
    messages = a.validate_targeting(targeting)
    return {"targeting": messages} if messages else {}


@transaction.atomic
def update_experiment(experiment: Experiment, *, actor, changes: dict) -> Experiment:
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    allowed = EDITABLE[experiment.status]
    if holdouts.measures_holdout(experiment):
        allowed = ALWAYS_EDITABLE  # its split is the holdout's share
    errors: dict = {}
    for field in changes:
        if field in NEVER_EDITABLE:
            errors[field] = [f"{field} cannot be changed; create a new experiment instead."]
        elif field not in allowed:
            errors[field] = [f"{field} cannot be changed while the experiment is {experiment.status}."]
    _raise(errors)
    before = snapshot(experiment)
    variants = {v.key: v for v in experiment.variants.all()}
    if "weights" in changes:
        weights = changes["weights"]
        if set(weights) != set(variants):
            errors["weights"] = [f"Give a weight for exactly these variants: {', '.join(sorted(variants))}."]
        else:
            errors.update(_weight_errors(weights))
    if "forced_user_ids" in changes:
        forced = changes["forced_user_ids"]
        unknown = set(forced) - set(variants)
        if unknown:
            errors["forced_user_ids"] = [f"Unknown variants: {', '.join(sorted(unknown))}."]
        else:
            owners: dict[str, str] = {}
            for key, users in forced.items():
                for u in users:
                    if owners.setdefault(u, key) != key:
                        errors["forced_user_ids"] = [f"User {u!r} is forced into both {owners[u]} and {key}."]
    if "targeting" in changes:
        errors.update(_targeting_errors(changes["targeting"]))
    errors.update(_metric_errors(changes))
    errors.update(_margin_errors(changes, list(changes.get("guardrail_metrics", experiment.guardrail_metrics))))
    if "layer_buckets" in changes:
        slice_, slice_errors = _validate_slice(experiment.layer, changes["layer_buckets"], exclude_id=experiment.id)
        errors.update(slice_errors)
    _raise(errors)

    if experiment.started_at is not None:  # before the fields change: it reads the old traffic and weights
        _record_phase_change(experiment, {k: v.weight for k, v in variants.items()}, changes, timezone.now())
    for field in ("name", "description", "hypothesis", "end_at", "traffic_percent", "targeting", "primary_metric",
                  "guardrail_metrics", "minimum_detectable_effect", "pause_on_guardrail_regression",
                  "guardrail_margins"):
        if field in changes:
            setattr(experiment, field, changes[field])
    if "layer_buckets" in changes:
        experiment.bucket_start, experiment.bucket_end = changes["layer_buckets"]
    if "weights" in changes:
        current = tuple((int(s), int(e), str(k)) for s, e, k in experiment.allocation)
        experiment.allocation = [list(r) for r in a.rebalance(current, changes["weights"])]
        for key, weight in changes["weights"].items():
            variants[key].weight = weight
            variants[key].save(update_fields=["weight"])
    if "forced_user_ids" in changes:
        for key, users in changes["forced_user_ids"].items():
            variants[key].forced_user_ids = [str(u) for u in users]
            variants[key].save(update_fields=["forced_user_ids"])
    experiment.save()
    _audit(experiment, actor, "update", before, snapshot(experiment))
    return experiment


def _record_phase_change(experiment: Experiment, old_weights: dict, changes: dict, now) -> None:
    """After the first start, new weights open the next phase and a traffic change is a
    ramp inside the current one (docs/assignment.md, "Phases")."""
    current = experiment.phases.order_by("-number").first()
    if current is None:  # started before phases existed and not migrated: begin the record here
        current = Phase.objects.create(experiment=experiment, number=1, started_at=experiment.started_at,
                                       weights=old_weights, traffic_percent=experiment.traffic_percent)
    traffic = changes.get("traffic_percent", experiment.traffic_percent)
    weights = changes.get("weights")
    if weights is not None and any(not math.isclose(weights[k], old_weights[k]) for k in old_weights):
        if _opened_while_paused(experiment, current):
            # Nobody has been exposed since this phase opened: change it rather than
            # leave an empty phase behind.
            current.weights, current.traffic_percent = dict(weights), traffic
            current.save(update_fields=["weights", "traffic_percent"])
        else:
            Phase.objects.create(experiment=experiment, number=current.number + 1, started_at=now,
                                 weights=dict(weights), traffic_percent=traffic)
        return
    if "traffic_percent" in changes and not math.isclose(traffic, experiment.traffic_percent):
        current.ramps = [*current.ramps, {"at": now.isoformat(), "from": experiment.traffic_percent, "to": traffic}]
        current.save(update_fields=["ramps"])


def _opened_while_paused(experiment: Experiment, phase: Phase) -> bool:
    """The phase was opened while the experiment is paused and it has not run since."""
    if experiment.status != Status.PAUSED or phase.number == 1:
        return False
    paused_at = experiment.audit_log.filter(action="pause").values_list("at", flat=True).first()
    return paused_at is not None and phase.started_at >= paused_at


@transaction.atomic
def transition(experiment: Experiment, action: str, *, actor, variant: str | None = None,
               rollout: list | None = None, hold_hours: float | None = None, note: str = "") -> Experiment:
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if holdouts.measures_holdout(experiment):
        raise ValidationError({"status": [
            f"{experiment.key} measures the {experiment.surface} holdout: it runs while the holdout does; "
            f"end the holdout instead (DELETE /api/v1/surfaces/{experiment.surface}/holdout)."]})
    sources, target = TRANSITIONS[action]
    if experiment.status not in sources:
        allowed = ", ".join(act for act, (src, _) in TRANSITIONS.items() if experiment.status in src) or "none"
        raise ValidationError({"status": [
            f"Cannot {action} an experiment that is {experiment.status}; allowed now: {allowed}."
        ]})
    before = snapshot(experiment)
    now = timezone.now()
    if action == "ship":
        keys = set(experiment.variants.values_list("key", flat=True))
        if variant not in keys:
            raise ValidationError({"variant": [f"Name the variant to ship, one of: {', '.join(sorted(keys))}."]})
        stage = experiment.layer.stage
        _raise({**(rollouts.steps_errors(rollout, hold_hours) if rollout is not None else {}),
                **rollouts.busy_stage_errors(experiment.surface, stage)})
        experiment.shipped_variant = variant
        # Ship launches: the variant's config is what users in no experiment get from now on,
        # at once or in steps.
        shipped = experiment.variants.get(key=variant)
        if rollout is not None and len(rollout) > 1:
            rollouts.start(experiment, variant, shipped.recommender, rollout, hold_hours, actor)
        else:
            surfaces.ship(surface=experiment.surface, stage=stage, recommender=shipped.recommender,
                          actor=actor, source=f"ship {experiment.key}: {variant}")
    if action == "start" and experiment.started_at is None:
        experiment.started_at = now
        Phase.objects.create(experiment=experiment, number=1, started_at=now,
                             traffic_percent=experiment.traffic_percent,
                             weights={v.key: v.weight for v in experiment.variants.order_by("id")})
        _freeze_versions(experiment)
    if action == "start":
        _check_pinned_bound(experiment)
    if target in (Status.STOPPED, Status.SHIPPED) and experiment.stopped_at is None:
        experiment.stopped_at = now
    experiment.status = target
    experiment.save()
    _audit(experiment, actor, action, before, snapshot(experiment), note)
    # Alerts listen (experiment.lifecycle); only once the change is committed.
    experiment_id, actor_id = experiment.pk, getattr(actor, "pk", None)
    transaction.on_commit(lambda: lifecycle_changed.send_robust(
        sender=Experiment, experiment_id=experiment_id, action=action, status=target, actor_id=actor_id,
        note=note, variant=variant), robust=True)
    return experiment


def _freeze_versions(experiment: Experiment) -> None:
    """A variant that pins no version serves the one active when the experiment first
    starts, from then on: a build made while it runs must not change what it measures.
    A recommender with nothing built yet stays unpinned (it falls back until built)."""
    for variant in experiment.variants.all():
        config = variant.recommender
        if not isinstance(config, dict) or config.get("version"):
            continue
        version = references.active_version(config.get("name"))
        if version is not None:
            variant.recommender = {**config, "version": version}
            variant.save(update_fields=["recommender"])


def _pinned(configs) -> set[tuple[str, str]]:
    return {(c["name"], c["version"]) for c in configs if isinstance(c, dict) and c.get("version")}


def _check_pinned_bound(experiment: Experiment) -> None:
    """Each serving process holds the active versions plus at most
    RECOMMENDER_MAX_PINNED_VERSIONS others; refusing the start beats an experiment whose
    variants would only ever be served by the fallback."""
    ours = _pinned(experiment.variants.values_list("recommender", flat=True))
    others = _pinned(Variant.objects.filter(experiment__status=Status.RUNNING).exclude(experiment=experiment)
                     .values_list("recommender", flat=True))
    others |= _pinned(SurfaceDefault.objects.values_list("recommender", flat=True))
    extra = {(n, v) for n, v in ours | others if references.active_version(n) != v}
    limit = settings.RECOMMENDER_MAX_PINNED_VERSIONS
    if len(extra) > limit and ours & (extra - others):  # only what this start adds is refused
        raise ValidationError({"variants": [
            f"Starting would have {len(extra)} model versions besides the active ones served at once; "
            f"RECOMMENDER_MAX_PINNED_VERSIONS allows {limit}. Pinned now: "
            f"{', '.join(f'{n}@{v}' for n, v in sorted(extra))}. Stop an experiment that pins one, or pin an "
            "active version."]})


# --- Exposures --------------------------------------------------------------------


def record_exposures(rows: list[dict]) -> int:
    """Insert exposures, idempotent on (experiment, user); a repeat only moves the
    first exposure time earlier. A repeat in another variant than the one recorded (a
    client that cached an old assignment, a reassignment between phases) keeps the
    first variant and marks the user `other_variant`: the results' health panel counts
    them. Returns the number of rows in the batch written."""
    earliest: dict[tuple[int, str], dict] = {}
    for row in rows:
        key = (row["experiment_id"], row["user_id"])
        seen = earliest.get(key)
        mixed = seen is not None and (seen["other_variant"] or seen["variant_id"] != row["variant_id"])
        if seen is None or row["at"] < seen["at"]:
            earliest[key] = {**row, "other_variant": mixed}
        else:
            seen["other_variant"] = mixed
    if not earliest:
        return 0
    # Exposures of experiments deleted since they were served are dropped, not retried forever.
    known = set(Variant.objects.filter(id__in={r["variant_id"] for r in earliest.values()})
                .values_list("id", "experiment_id"))
    values = [r for r in earliest.values() if (r["variant_id"], r["experiment_id"]) in known]
    if not values:
        return 0
    placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(values))
    params: list = []
    for r in values:
        at = r["at"] if isinstance(r["at"], datetime) else datetime.fromisoformat(r["at"])
        params += [r["experiment_id"], r["variant_id"], r["user_id"], at, json.dumps(r.get("attributes") or {}),
                   bool(r.get("forced")), r["other_variant"]]
    earlier = "excluded.first_exposed_at < experiments_exposure.first_exposed_at"
    sql = (
        "INSERT INTO experiments_exposure (experiment_id, variant_id, user_id, first_exposed_at, attributes, forced, "
        f"other_variant) VALUES {placeholders} "
        "ON CONFLICT (experiment_id, user_id) DO UPDATE SET "
        f"first_exposed_at = CASE WHEN {earlier} THEN excluded.first_exposed_at "
        "ELSE experiments_exposure.first_exposed_at END, "
        f"attributes = CASE WHEN {earlier} THEN excluded.attributes ELSE experiments_exposure.attributes END, "
        "other_variant = (experiments_exposure.other_variant OR excluded.other_variant "
        "OR excluded.variant_id <> experiments_exposure.variant_id) "
        f"WHERE {earlier} OR ((excluded.other_variant OR excluded.variant_id <> experiments_exposure.variant_id) "
        "AND NOT experiments_exposure.other_variant)"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return len(values)


def add_serving_counts(rows: list[tuple[int, str, bool]]) -> int:
    """Add (variant id, day, fell back) records to the per-day counts, in one upsert.
    Counts of variants deleted since are dropped."""
    totals: dict[tuple[int, str], list[int]] = {}
    for variant_id, day, fell_back in rows:
        count = totals.setdefault((variant_id, day), [0, 0])
        count[0] += 1
        count[1] += int(bool(fell_back))
    known = set(Variant.objects.filter(id__in={v for v, _ in totals}).values_list("id", flat=True))
    values = [(v, d, n, f) for (v, d), (n, f) in totals.items() if v in known]
    if not values:
        return 0
    placeholders = ", ".join(["(%s, %s, %s, %s)"] * len(values))
    sql = (
        f"INSERT INTO experiments_variantserving (variant_id, day, requests, fallbacks) VALUES {placeholders} "
        "ON CONFLICT (variant_id, day) DO UPDATE SET requests = experiments_variantserving.requests + "
        "excluded.requests, fallbacks = experiments_variantserving.fallbacks + excluded.fallbacks"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [x for row in values for x in row])
    return len(rows)
