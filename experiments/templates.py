"""Experiment templates: a team's saved primary metric, guardrails with their margins,
MDE and targeting. Creating an experiment from one copies what the request does not
give itself; the experiment keeps the template's key and owns its copy from then on."""

from django.core.exceptions import ValidationError

from experiments import assignment as a
from experiments import references
from experiments.models import ExperimentTemplate

# What a template fills in an experiment, and the experiment's field for each.
FILLS = ("primary_metric", "guardrail_metrics", "guardrail_margins", "minimum_detectable_effect", "targeting")


def is_margin(value) -> bool:
    """A guardrail's relative margin: a fraction from 0 to 1, or None (no non-inferiority test)."""
    return value is None or (not isinstance(value, bool) and isinstance(value, int | float) and 0 <= value <= 1)


def _guardrail_errors(guardrails) -> list[str]:
    if not isinstance(guardrails, list):
        return ['A list of {"metric": key, "margin": fraction or null}.']
    messages, seen = [], set()
    for i, g in enumerate(guardrails):
        if not isinstance(g, dict) or set(g) - {"metric", "margin"} or not isinstance(g.get("metric"), str):
            messages.append(f'Guardrail {i + 1}: {{"metric": key, "margin": fraction or null}}.')
            continue
        if not is_margin(g.get("margin")):
            messages.append(f"Guardrail {i + 1} ({g['metric']}): the margin is a fraction from 0 to 1 "
                            "(0.02: it may get 2% worse), or null for no non-inferiority test.")
        if g["metric"] in seen:
            messages.append(f"Guardrail {i + 1}: {g['metric']} is listed twice.")
        seen.add(g["metric"])
    unknown = sorted(seen - references.known_metrics(seen))
    if unknown:
        messages.append(f"Unknown metrics: {', '.join(unknown)}; see /api/v1/metrics.")
    return messages


def template_errors(fields: dict) -> dict:
    errors: dict[str, list[str]] = {}
    if "primary_metric" in fields:
        primary = fields["primary_metric"]
        if not isinstance(primary, str) or primary not in references.known_metrics([primary]):
            errors["primary_metric"] = [f"Unknown metric {str(primary)[:64]!r}; see /api/v1/metrics."]
    if "guardrails" in fields and (messages := _guardrail_errors(fields["guardrails"])):
        errors["guardrails"] = messages
    if "minimum_detectable_effect" in fields:
        mde = fields["minimum_detectable_effect"]
        if isinstance(mde, bool) or not isinstance(mde, int | float) or not 0 < mde <= 1:
            errors["minimum_detectable_effect"] = ["A relative effect above 0 and at most 1 (0.02 is 2%)."]
    if "targeting" in fields and (messages := a.validate_targeting(fields["targeting"])):
        errors["targeting"] = messages
    return errors


def create_template(*, actor, **fields) -> ExperimentTemplate:
    errors = template_errors(fields)
    if ExperimentTemplate.objects.filter(key=fields.get("key")).exists():
        errors["key"] = [f"A template with key {fields['key']!r} already exists."]
    if errors:
        raise ValidationError(errors)
    return ExperimentTemplate.objects.create(owner=actor if getattr(actor, "pk", None) else None, **fields)


def update_template(template: ExperimentTemplate, changes: dict) -> ExperimentTemplate:
    errors = template_errors(changes)
    if errors:
        raise ValidationError(errors)
    for field, value in changes.items():
        setattr(template, field, value)
    template.save()
    return template


def filled(template: ExperimentTemplate) -> dict:
    """The experiment fields a template gives."""
    return {
        "primary_metric": template.primary_metric,
        "guardrail_metrics": [g["metric"] for g in template.guardrails],
        "guardrail_margins": {g["metric"]: g.get("margin") for g in template.guardrails},
        "minimum_detectable_effect": template.minimum_detectable_effect,
        "targeting": template.targeting,
    }


def apply(key: str, given: set[str], fields: dict) -> dict:
    """`fields` of a new experiment with what the template `key` gives in place of every
    field the request did not give (`given`: the fields the request named)."""
    template = ExperimentTemplate.objects.filter(key=key).first()
    if template is None:
        known = ", ".join(ExperimentTemplate.objects.values_list("key", flat=True)[:20]) or "none yet"
        raise ValidationError({"template": [f"No template {key!r}; templates: {known}."]})
    merged = {**fields, **{k: v for k, v in filled(template).items() if k not in given}, "template": key}
    if "guardrail_margins" not in given:
        # The template's margins for the guardrails the experiment keeps; one the request dropped goes too.
        merged["guardrail_margins"] = {k: v for k, v in merged["guardrail_margins"].items()
                                       if k in (merged.get("guardrail_metrics") or [])}
    return merged
