"""Surface defaults: what users in no experiment are served, per stage, changed by ship
or by an admin, with every change kept. Serving reads them from the held assignment
configuration (`SurfaceConfig.defaults`), so a change reaches every process within
ASSIGNMENT_CONFIG_CHECK_SECONDS and the closeup reads no database for them."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from experiments import references
from experiments.models import STAGES, SURFACES, SurfaceDefault, SurfaceDefaultChange

STAGE_KEYS = tuple(s for s, _ in STAGES)


def effective_defaults(stored: dict) -> dict:
    """Per stage, what is served: the stored config, else the built-in default (whole:
    DEFAULT_RECOMMENDER; retrieval: the whole list's recommender; ranking: none)."""
    whole = stored.get("whole") or {"name": settings.DEFAULT_RECOMMENDER, "params": {}}
    return {"whole": whole, "retrieval": stored.get("retrieval") or whole, "ranking": stored.get("ranking")}


def stored_defaults(surface: str) -> dict:
    return {row.stage: row.recommender for row in SurfaceDefault.objects.filter(surface=surface)}


def describe(surface: str, history: int = 50) -> dict:
    changes = SurfaceDefaultChange.objects.filter(surface=surface).select_related("actor")[:history]
    return {
        "surface": surface,
        "defaults": [{"stage": stage, "recommender": config} for stage, config in
                     effective_defaults(stored_defaults(surface)).items()],
        "history": [{"stage": c.stage, "before": c.before, "after": c.after, "source": c.source,
                     "actor": c.actor.get_username() if c.actor else None, "at": c.at} for c in changes],
    }


def _checked(stage: str, recommender) -> dict | None:
    if stage not in STAGE_KEYS:
        raise ValidationError({"stage": [f"Must be one of: {', '.join(STAGE_KEYS)}."]})
    if recommender is None:
        if stage == "whole":
            raise ValidationError({"recommender": ["The whole list needs a recommender."]})
        return None
    if not isinstance(recommender, dict) or not isinstance(recommender.get("name"), str):
        raise ValidationError({"recommender": [
            'Must be {"name": <recommender>, "params": {...}, "version"?} or null.']})
    unknown = set(recommender) - {"name", "params", "version"}
    params = recommender.get("params") or {}
    messages = ([f"Unknown keys: {', '.join(sorted(unknown))}."] if unknown else []) + \
        references.recommender_errors(recommender["name"], params, stage)
    if not messages and "version" in recommender:
        messages = references.version_errors(recommender["name"], recommender["version"])
    if messages:
        raise ValidationError({"recommender": messages})
    # A version pinned here stays served after later builds, as a shipped variant's did in its experiment.
    return {"name": recommender["name"], "params": params,
            **({"version": recommender["version"]} if "version" in recommender else {})}


@transaction.atomic
def set_default(*, surface: str, stage: str, recommender, actor, source: str) -> None:
    """Set (or, with None, clear) one stage's default, recording the change."""
    if surface not in {s for s, _ in SURFACES}:
        raise ValidationError({"surface": [f"Unknown surface {surface!r}."]})
    config = _checked(stage, recommender)
    row = SurfaceDefault.objects.select_for_update().filter(surface=surface, stage=stage).first()
    before = row.recommender if row else None
    if before == config:
        return
    if config is None:
        row.delete()
    elif row is None:
        SurfaceDefault.objects.create(surface=surface, stage=stage, recommender=config)
    else:
        row.recommender = config
        row.save(update_fields=["recommender", "updated_at"])
    SurfaceDefaultChange.objects.create(surface=surface, stage=stage, before=before, after=config,
                                        actor=actor if getattr(actor, "pk", None) else None, source=source)


def ship(*, surface: str, stage: str, recommender: dict, actor, source: str) -> None:
    """A shipped variant's config becomes the default of its layer's stage. A whole-list
    variant now makes the whole list, so stage defaults set earlier are cleared."""
    set_default(surface=surface, stage=stage, recommender=recommender, actor=actor, source=source)
    if stage == "whole":
        for other in ("retrieval", "ranking"):
            set_default(surface=surface, stage=other, recommender=None, actor=actor, source=source)
