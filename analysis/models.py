from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from analysis.metric_kinds import registry as metric_kinds
from analysis.stats.minimum_data import PEER_EVENTS_PER_VARIANT, PEER_USERS_PER_VARIANT
from events.validation import EVENT_TYPES, MAX_PROPERTY_KEY, MAX_PROPERTY_STRING, PROPERTY_KEY
from experiments.models import Experiment


def _event_types(value):
    if not isinstance(value, list) or not all(t in EVENT_TYPES for t in value):
        raise ValidationError(f"a list of event types from: {', '.join(EVENT_TYPES)}")


DEFAULT_CAP_PERCENTILE = 99.9  # for per-user means, where one heavy user moves the mean
MAX_WINDOW_DAYS = 90
MAX_FILTERS = 10
MAX_IN_VALUES = 50


def filter_errors(value) -> list[str]:
    """Messages for a metric's property filters; empty when they are valid. A property
    is named as events name it (events/validation.py); names and values reach the SQL
    only as parameters."""
    if not isinstance(value, list):
        return ['A list of {"property", "op", "value"} objects.']
    if len(value) > MAX_FILTERS:
        return [f"At most {MAX_FILTERS} filters."]
    messages = []
    for i, f in enumerate(value, start=1):
        if not isinstance(f, dict) or set(f) != {"property", "op", "value"}:
            messages.append(f'Filter {i}: {{"property", "op", "value"}}, nothing else.')
            continue
        name, op, given = f["property"], f["op"], f["value"]
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_PROPERTY_KEY or not PROPERTY_KEY.fullmatch(name):
            messages.append(f"Filter {i}: property names are 1–{MAX_PROPERTY_KEY} characters of letters, digits, "
                            "'_', '.' or '-', starting with a letter or '_', as events send them.")
        if op not in ("eq", "neq", "in"):
            messages.append(f"Filter {i}: op is eq, neq or in, not {str(op)[:20]!r}.")
        elif op == "in":
            if (not isinstance(given, list) or not 1 <= len(given) <= MAX_IN_VALUES
                    or not all(isinstance(v, str) and len(v) <= MAX_PROPERTY_STRING for v in given)):
                messages.append(f"Filter {i}: in takes a list of 1–{MAX_IN_VALUES} strings.")
        elif not isinstance(given, str) or len(given) > MAX_PROPERTY_STRING:
            messages.append(f"Filter {i}: the value is a string of at most {MAX_PROPERTY_STRING} characters "
                            "(properties are compared as text).")
    return messages


def _filters(value):
    if messages := filter_errors(value):
        raise ValidationError(" ".join(messages))


class Metric(models.Model):
    """What an experiment is judged on: a per-user aggregate of events after the user's
    first exposure, compared between variants (see docs/statistics.md)."""

    class Aggregation(models.TextChoices):
        ANY = "any", "any (0 or 1 per user)"
        COUNT = "count", "count of events"
        SUM = "sum", "sum of the events' values (an event without a value adds 0)"
        DAYS = "days", "count of distinct days (UTC) with such events"

    class Direction(models.TextChoices):
        HIGHER = "higher", "higher is better"
        LOWER = "lower", "lower is better"

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=metric_kinds.choices())
    numerator_types = models.JSONField(validators=[_event_types], help_text="event types counted in the numerator")
    denominator_types = models.JSONField(default=list, blank=True, validators=[_event_types],
                                         help_text="ratio metrics: event types counted in the denominator")
    aggregation = models.CharField(max_length=8, choices=Aggregation.choices, default=Aggregation.COUNT)
    direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.HIGHER)
    is_guardrail = models.BooleanField(default=False)
    numerator_filters = models.JSONField(
        default=list, blank=True, validators=[_filters],
        help_text='only events whose properties pass: [{"property": "platform", "op": "eq", "value": "ios"}]; '
                  'op eq, neq or in (value a list)')
    denominator_aggregation = models.CharField(
        max_length=8, choices=[c for c in Aggregation.choices if c[0] != "any"], default="count",
        help_text="ratio metrics: how the denominator's events add up")
    denominator_filters = models.JSONField(default=list, blank=True, validators=[_filters],
                                           help_text="ratio metrics: the denominator's property filters")
    window_hours = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_WINDOW_DAYS * 24)],
        help_text="count events this many hours after the first exposure (at most 90 days); empty: until the "
                  "analysis",
    )
    cuped_pre_period_days = models.PositiveIntegerField(
        default=7, help_text="days before the first exposure for the CUPED covariate; 0 turns CUPED off",
    )
    cap_percentile = models.FloatField(
        null=True, blank=True, default=None, validators=[MinValueValidator(50.0), MaxValueValidator(99.999)],
        help_text="winsorize each user's counts at this percentile of all users' (above 0), as Statsig does; "
                  "empty: no cap (the API's default for a mean metric is 99.9). 0/1 values are never capped",
    )
    guardrail_margin = models.FloatField(
        null=True, blank=True, default=0.02, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="as a guardrail: how much worse it may get, relative (0.02: 2%), for the non-inferiority "
                  "test; empty: no such test",
    )
    min_users_per_variant = models.PositiveIntegerField(
        default=PEER_USERS_PER_VARIANT, validators=[MinValueValidator(2)],
        help_text="no verdict until every arm of a comparison has this many users (PostHog waits for 100)")
    min_events_per_variant = models.PositiveIntegerField(
        default=PEER_EVENTS_PER_VARIANT,
        help_text="no verdict until every arm of a comparison has this many numerator events (clicks, saves; for "
                  "a conversion rate, converting users); GrowthBook's default minimum sample size is 150")
    is_builtin = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]

    def __str__(self):
        return self.key

    def clean(self):
        problems = metric_kinds.validate(self)
        if problems:
            # The first only, as the admin form has always shown them (the API shows all).
            field, message = next(iter(problems.items()))
            raise ValidationError({field: message})


class AnalysisReport(models.Model):
    """One analysis run of one experiment: written whole when it succeeds, or as a
    failure with the reason; never half (see analysis/services.py)."""

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        DAILY = "daily"
        MANUAL = "manual"
        API = "api"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="reports")
    status = models.CharField(max_length=16, choices=Status.choices)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    started_at = models.DateTimeField()
    computed_at = models.DateTimeField(help_text="when the run finished")
    as_of = models.DateTimeField(help_text="events and exposures up to this time were counted")
    phase = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="the experiment phase analysed (users first exposed in it); empty: never started, no phases")
    duration_ms = models.PositiveIntegerField(default=0)
    settings = models.JSONField(default=dict)
    results = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-computed_at", "-id"]
        indexes = [models.Index(fields=["experiment", "status", "-computed_at"], name="report_latest_idx")]

    def __str__(self):
        return f"{self.experiment.key} report {self.pk} ({self.status})"
