"""The metrics every Pinpoint install has (created by migration 0002)."""

BUILTIN_METRICS = [
    {"key": "closeup_ctr", "name": "Closeup CTR", "kind": "ratio", "numerator_types": ["click"],
     "denominator_types": ["impression"], "aggregation": "count", "direction": "higher",
     "description": "Clicks per impression on the closeup grid: total clicks over total impressions."},
    {"key": "save_rate", "name": "Save rate", "kind": "ratio", "numerator_types": ["save"],
     "denominator_types": ["impression"], "aggregation": "count", "direction": "higher",
     "description": "Saves per impression: total saves over total impressions."},
    {"key": "engaged_users", "name": "Engaged users", "kind": "proportion", "numerator_types": ["click", "save"],
     "denominator_types": [], "aggregation": "any", "direction": "higher",
     "description": "Share of exposed users with at least one click or save."},
    {"key": "saves_per_user", "name": "Saves per user", "kind": "mean", "numerator_types": ["save"],
     "denominator_types": [], "aggregation": "count", "direction": "higher", "cap_percentile": 99.9,
     "description": "Saves per exposed user."},
    {"key": "closeups_per_user", "name": "Closeups per user", "kind": "mean", "numerator_types": ["closeup"],
     "denominator_types": [], "aggregation": "count", "direction": "higher", "cap_percentile": 99.9,
     "description": "Closeup opens per exposed user."},
    {"key": "hide_rate", "name": "Hide rate", "kind": "ratio", "numerator_types": ["hide"],
     "denominator_types": ["impression"], "aggregation": "count", "direction": "lower", "is_guardrail": True,
     "description": "Hides per impression; a guardrail: it must not go up."},
]


def ensure_builtin_metrics(apps=None, using: str = "default") -> None:
    """Create the built-in metrics that are missing; an admin's edits to existing ones stay."""
    Metric = apps.get_model("analysis", "Metric") if apps is not None else None
    if Metric is None:
        from analysis.models import Metric  # also called from migrations, before models may be imported
    existing = set(Metric.objects.using(using).values_list("key", flat=True))
    # A migration's historical model may predate a field of the spec (cap_percentile): that
    # field's own migration sets it.
    known = {f.name for f in Metric._meta.get_fields()}
    Metric.objects.using(using).bulk_create(
        [Metric(**{k: v for k, v in spec.items() if k in known}, is_builtin=True)
         for spec in BUILTIN_METRICS if spec["key"] not in existing]
    )
