"""Ship in steps: a shipped variant's config reaches a growing share of the users in no
experiment before it becomes the stage's default, so a launch that hurts at 10% is
stopped before it reaches everyone (docs/assignment.md, Rollouts).

Users are chosen by their bucket under the rollout's own salt, so each step only adds
users, as a traffic ramp does. `advance_due` runs every minute (core/schedules.py) and
moves a rollout one step once its step has been held `hold_hours`; the last step (100%)
is the ship itself: the config becomes the surface default and the rollout is done."""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from experiments import surfaces
from experiments.models import AuditLog, Experiment, Rollout

MAX_STEPS = 10
DEFAULT_HOLD_HOURS = 24.0


def steps_errors(steps, hold_hours) -> dict:
    errors: dict[str, list[str]] = {}
    if not isinstance(steps, list) or not steps or len(steps) > MAX_STEPS:
        errors["rollout"] = [f"Give 1 to {MAX_STEPS} percentages, for example [10, 50, 100]."]
    elif any(isinstance(p, bool) or not isinstance(p, int | float) for p in steps):
        errors["rollout"] = ["Each step is a percentage of users, a number."]
    elif any(not 0 < p <= 100 for p in steps) or any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        errors["rollout"] = ["Steps must go up, each above 0 and at most 100."]
    elif steps[-1] != 100:
        errors["rollout"] = ["The last step must be 100: a rollout ends with everyone."]
    if hold_hours is not None and (isinstance(hold_hours, bool) or not isinstance(hold_hours, int | float)
                                   or not 0 < hold_hours <= 24 * 90):
        errors["hold_hours"] = ["Hours to hold each step: a number above 0, at most 2,160 (90 days)."]
    return errors


def in_progress(surface: str, stage: str) -> Rollout | None:
    return Rollout.objects.filter(surface=surface, stage=stage, status=Rollout.Status.ROLLING).first()


def busy_stage_errors(surface: str, stage: str) -> dict:
    running = in_progress(surface, stage)
    if running is None:
        return {}
    return {"variant": [f"{running.experiment.key}'s {running.variant} is being rolled out on the {stage} stage "
                        f"({running.percent:g}% now); stop that rollout or let it finish first."]}


def start(experiment: Experiment, variant: str, recommender: dict, steps: list, hold_hours: float | None,
          actor) -> Rollout:
    """Called by ship inside its transaction, once it has checked the variant."""
    return Rollout.objects.create(
        experiment=experiment, variant=variant, surface=experiment.surface, stage=experiment.layer.stage,
        recommender=recommender, steps=[float(p) for p in steps],
        hold_hours=float(hold_hours if hold_hours is not None else DEFAULT_HOLD_HOURS),
        step_started_at=timezone.now())


def describe(rollout: Rollout | None) -> dict | None:
    if rollout is None:
        return None
    next_at = None
    if rollout.status == Rollout.Status.ROLLING:
        next_at = rollout.step_started_at + timedelta(hours=rollout.hold_hours)
    return {"variant": rollout.variant, "stage": rollout.stage, "status": rollout.status,
            "steps": rollout.steps, "step": rollout.step + 1, "percent": rollout.percent,
            "hold_hours": rollout.hold_hours, "step_started_at": rollout.step_started_at, "next_step_at": next_at,
            "recommender": rollout.recommender}


def _audit(rollout: Rollout, actor, action: str, before: dict) -> None:
    AuditLog.objects.create(experiment=rollout.experiment, actor=actor if getattr(actor, "pk", None) else None,
                            action=action, before=before, after=_state(rollout))


def _state(rollout: Rollout) -> dict:
    return {"rollout": rollout.status, "percent": rollout.percent, "step": rollout.step + 1}


def _locked(experiment: Experiment) -> Rollout:
    rollout = Rollout.objects.select_for_update().filter(experiment=experiment).first()
    if rollout is None:
        raise ValidationError({"rollout": [f"{experiment.key} was not shipped with a rollout."]})
    if rollout.status != Rollout.Status.ROLLING:
        raise ValidationError({"rollout": [f"The rollout of {experiment.key} is {rollout.status} already."]})
    return rollout


@transaction.atomic
def advance(experiment: Experiment, *, actor, source: str) -> Rollout:
    """One step up now; from the second-to-last step this finishes the ship."""
    rollout = _locked(experiment)
    before = _state(rollout)
    rollout.step += 1
    rollout.step_started_at = timezone.now()
    if rollout.step >= len(rollout.steps) - 1:
        rollout.step = len(rollout.steps) - 1
        rollout.status = Rollout.Status.DONE
        rollout.save()  # first: the stage is free for the default to change
        surfaces.ship(surface=rollout.surface, stage=rollout.stage, recommender=rollout.recommender, actor=actor,
                      source=f"ship {experiment.key}: {rollout.variant} ({source})")
    else:
        rollout.save()
    _audit(rollout, actor, "rollout", before)
    return rollout


@transaction.atomic
def stop(experiment: Experiment, *, actor) -> Rollout:
    """Everyone not yet at 100% goes back to the stage's default as it was."""
    rollout = _locked(experiment)
    before = _state(rollout)
    rollout.status = Rollout.Status.STOPPED
    rollout.save()
    _audit(rollout, actor, "rollout", before)
    return rollout


ACTIONS = ("advance", "stop")


def act(experiment: Experiment, action: str, *, actor) -> Rollout:
    """A person's action on a rollout, from the API or the dashboard: step up now, or stop."""
    if action == "advance":
        return advance(experiment, actor=actor, source=f"advanced by {actor.get_username()}")
    return stop(experiment, actor=actor)


def advance_due(now=None) -> int:
    """Move every rollout whose step has been held long enough; returns how many moved."""
    now = now or timezone.now()
    moved = 0
    for rollout in Rollout.objects.filter(status=Rollout.Status.ROLLING).select_related("experiment"):
        if rollout.step_started_at + timedelta(hours=rollout.hold_hours) <= now:
            try:
                advance(rollout.experiment, actor=None, source=f"step held {rollout.hold_hours:g} h")
            except ValidationError:  # stopped or moved by a person meanwhile
                continue
            moved += 1
    return moved
