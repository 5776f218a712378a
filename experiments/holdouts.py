"""Holdouts that are measured. A surface holdout keeps a share of users out of every
experiment of the surface and serves them the surface defaults as they were when it
started, so over a quarter it answers "what did our launches add together?".

It is measured as an experiment of its own, made when the holdout starts: variant
`held_back` (the control: the held-back users) against `launched` (everyone else, who
get today's defaults, rollouts and experiments). Closeup requests record an exposure
in it for every user, so the usual analysis (metrics, intervals, SRM against the
holdout's share) is its report. The experiment sits in a reserved layer that no other
experiment may use, and is not assigned through layers: serving checks the holdout's
own hash. Ending the holdout stops the experiment; its last report stays."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from experiments import assignment as a
from experiments import references, surfaces
from experiments.models import BUCKETS, SURFACES, AuditLog, Experiment, Holdout, Layer, Phase, Variant

HELD_BACK = "held_back"
LAUNCHED = "launched"


def reserved_layer_key(surface: str) -> str:
    return f"holdout-{surface}"


def _known(surface: str) -> None:
    if surface not in {s for s, _ in SURFACES}:
        raise ValidationError({"surface": [f"Unknown surface {surface!r}."]})


def active(surface: str) -> Holdout | None:
    return Holdout.objects.filter(surface=surface, is_active=True).select_related("experiment").first()


@transaction.atomic
def start(*, surface: str, percent, actor=None) -> Holdout:
    _known(surface)
    if isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 < percent <= 50:
        raise ValidationError({"percent": ["The share of users held back, in percent: above 0, at most 50."]})
    current = Holdout.objects.select_for_update().filter(surface=surface, is_active=True).first()
    if current is not None:
        raise ValidationError({"percent": [
            f"The {surface} surface has a {current.percent:g}% holdout since {current.created_at:%Y-%m-%d}; "
            "end it first (its report stays)."]})
    now = timezone.now()
    layer, _ = Layer.objects.get_or_create(
        key=reserved_layer_key(surface), defaults={"name": f"Holdouts of the {surface} (reserved)", "surface": surface})
    weights = {HELD_BACK: float(percent), LAUNCHED: 100.0 - float(percent)}
    defaults = _frozen(surfaces.stored_defaults(surface))
    key, n = f"holdout-{surface}-{now:%Y%m%d-%H%M}", 1
    while Experiment.objects.filter(key=key if n == 1 else f"{key}-{n}").exists():
        n += 1
    experiment = Experiment.objects.create(
        key=key if n == 1 else f"{key}-{n}",
        name=f"{surface.title()} holdout {percent:g}% from {now:%Y-%m-%d}",
        hypothesis="The launches shipped while the holdout runs, together, beat the defaults it started with.",
        description="Measures the surface holdout: held-back users against everyone else. Ends with the holdout.",
        layer=layer, surface=surface, bucket_start=0, bucket_end=BUCKETS, traffic_percent=100,
        status=Experiment.Status.RUNNING, started_at=now, owner=actor if getattr(actor, "pk", None) else None,
        allocation=[list(r) for r in a.initial_allocation(weights)])
    whole = surfaces.effective_defaults(defaults)["whole"]
    Variant.objects.bulk_create([
        Variant(experiment=experiment, key=HELD_BACK, name="Held back", weight=weights[HELD_BACK], is_control=True,
                recommender=dict(whole)),
        Variant(experiment=experiment, key=LAUNCHED, name="Launched", weight=weights[LAUNCHED],
                recommender={"name": "surface defaults", "params": {}}),
    ])
    Phase.objects.create(experiment=experiment, number=1, started_at=now, weights=weights, traffic_percent=100)
    holdout = Holdout.objects.create(surface=surface, percent=float(percent), defaults=defaults,
                                     experiment=experiment)
    AuditLog.objects.create(experiment=experiment, actor=experiment.owner, action="create", before=None,
                            after={"holdout": float(percent), "defaults": defaults})
    return holdout


@transaction.atomic
def end(*, surface: str, actor=None) -> Holdout:
    _known(surface)
    holdout = Holdout.objects.select_for_update().filter(surface=surface, is_active=True).first()
    if holdout is None:
        raise ValidationError({"surface": [f"The {surface} surface has no active holdout."]})
    now = timezone.now()
    holdout.is_active = False
    holdout.ended_at = now
    holdout.save()
    if holdout.experiment_id:
        experiment = holdout.experiment
        experiment.status = Experiment.Status.STOPPED
        experiment.stopped_at = now
        experiment.save()
        AuditLog.objects.create(experiment=experiment, actor=actor if getattr(actor, "pk", None) else None,
                                action="stop", before={"status": "running"}, after={"status": "stopped"})
    return holdout


def _frozen(stored: dict) -> dict:
    """The defaults as served now, each pinned to the version active now: a build while
    the holdout runs must not change what its users are served, as for an experiment."""
    frozen = {"whole": surfaces.effective_defaults(stored)["whole"], **stored}
    for stage, config in frozen.items():
        if config and not config.get("version") and (version := references.active_version(config.get("name"))):
            frozen[stage] = {**config, "version": version}
    return frozen


def describe(holdout: Holdout | None) -> dict | None:
    if holdout is None:
        return None
    return {"percent": holdout.percent, "started_at": holdout.created_at, "ended_at": holdout.ended_at,
            "active": holdout.is_active, "experiment": holdout.experiment.key if holdout.experiment_id else None,
            "defaults": surfaces.effective_defaults(holdout.defaults)}


def measures_holdout(experiment: Experiment) -> bool:
    return Holdout.objects.filter(experiment=experiment).exists()
