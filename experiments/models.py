import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from experiments.assignment import BUCKETS

SURFACES = [("closeup", "Closeup")]
# What an experiment in a layer of each stage decides about the closeup list: all of it
# (its recommender makes the list), the candidates (retrieval) or their order (ranking).
STAGES = [("whole", "Whole list"), ("retrieval", "Retrieval"), ("ranking", "Ranking")]
# How an experiment compares its variants: users split between them (A/B), or every user
# shown one list merged from both rankers (team-draft interleaving, docs/interleaving.md).
DESIGNS = [("ab", "A/B test"), ("interleaving", "Interleaving")]
INTERLEAVING_STAGES = ("whole", "ranking")


def new_salt() -> str:
    return secrets.token_hex(8)


class Layer(models.Model):
    """A namespace of 10,000 buckets split between its experiments: experiments in
    one layer are mutually exclusive, experiments in different layers independent."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    surface = models.CharField(max_length=32, choices=SURFACES, default="closeup")
    stage = models.CharField(max_length=16, choices=STAGES, default="whole")
    salt = models.CharField(max_length=32, default=new_salt, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]

    def __str__(self):
        return self.key


class Holdout(models.Model):
    """A share of a surface's users that no experiment of that surface assigns, served
    the surface defaults as they were when it started, and measured: its experiment
    compares the held-back users with everyone else (docs/assignment.md, Holdouts).
    A surface has at most one active holdout; changing the share starts a new one."""

    surface = models.CharField(max_length=32, choices=SURFACES)
    percent = models.FloatField(validators=[MinValueValidator(0), MaxValueValidator(100)])
    salt = models.CharField(max_length=32, default=new_salt, editable=False)
    is_active = models.BooleanField(default=True)
    defaults = models.JSONField(default=dict, blank=True, help_text="the stored surface defaults it started with")
    experiment = models.OneToOneField("Experiment", null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="holdout_of", help_text="measures it")
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["surface"], condition=models.Q(is_active=True),
                                               name="one_active_holdout_per_surface")]

    def __str__(self):
        return f"{self.surface} holdout {self.percent}%"


class SurfaceDefault(models.Model):
    """What users in no experiment are served on a surface, for one stage; changed by
    ship or by an admin, every change kept in SurfaceDefaultChange. Without a row: the
    whole list comes from DEFAULT_RECOMMENDER, retrieval from the whole list's
    recommender, and nothing ranks (docs/recommenders.md)."""

    surface = models.CharField(max_length=32, choices=SURFACES)
    stage = models.CharField(max_length=16, choices=STAGES)
    recommender = models.JSONField(help_text='{"name", "params"}')
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["surface", "stage"], name="surface_default_once_per_stage")]

    def __str__(self):
        return f"{self.surface} {self.stage}: {self.recommender.get('name')}"


class SurfaceDefaultChange(models.Model):
    surface = models.CharField(max_length=32)
    stage = models.CharField(max_length=16)
    before = models.JSONField(null=True)
    after = models.JSONField(null=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    source = models.CharField(max_length=200, help_text="what changed it: a ship, or a person through the API")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.surface} {self.stage} at {self.at:%Y-%m-%d %H:%M}"


class Experiment(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        RUNNING = "running"
        PAUSED = "paused"
        STOPPED = "stopped"
        SHIPPED = "shipped"

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    hypothesis = models.TextField(blank=True)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    surface = models.CharField(max_length=32, choices=SURFACES, default="closeup")
    design = models.CharField(max_length=16, choices=DESIGNS, default="ab")
    layer = models.ForeignKey(Layer, on_delete=models.PROTECT, related_name="experiments")
    bucket_start = models.PositiveIntegerField(validators=[MaxValueValidator(BUCKETS)])
    bucket_end = models.PositiveIntegerField(validators=[MaxValueValidator(BUCKETS)])
    traffic_percent = models.FloatField(default=100, validators=[MinValueValidator(0), MaxValueValidator(100)])
    salt = models.CharField(max_length=32, default=new_salt, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    targeting = models.JSONField(default=dict, blank=True)
    primary_metric = models.CharField(max_length=64, default="closeup_ctr")
    guardrail_metrics = models.JSONField(default=list, blank=True)
    minimum_detectable_effect = models.FloatField(default=0.02, help_text="relative, as a fraction: 0.02 is 2%")
    # Alerts (docs/operations.md): pause by itself when an analysis finds a guardrail regressed.
    pause_on_guardrail_regression = models.BooleanField(default=False)
    # {metric key: relative margin, or null for no non-inferiority test}; a guardrail not
    # named here uses its metric's own margin.
    guardrail_margins = models.JSONField(default=dict, blank=True)
    template = models.CharField(max_length=64, blank=True, help_text="the template it was made from, if any")
    # The variant bucket space's split, as [[start, end, variant key], ...] (see assignment.py).
    allocation = models.JSONField(default=list, editable=False)
    shipped_variant = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True, help_text="planned end")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("run_experiment", "Can start, pause, stop and ship experiments")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(bucket_start__lt=models.F("bucket_end")), name="experiment_bucket_range_nonempty"
            ),
        ]

    def __str__(self):
        return self.key


class ExperimentTemplate(models.Model):
    """A saved starting point for a team's experiments: what it judges them on (the
    primary metric, guardrails with their margins), the effect worth finding, and who
    is targeted. Offered by the create form and the API; an experiment copies it."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    primary_metric = models.CharField(max_length=64, default="closeup_ctr")
    guardrails = models.JSONField(default=list, blank=True, help_text='[{"metric": key, "margin": 0.02 or null}]')
    minimum_detectable_effect = models.FloatField(default=0.02, help_text="relative, as a fraction")
    targeting = models.JSONField(default=dict, blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "key"]

    def __str__(self):
        return self.key


class Variant(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=200, blank=True)
    weight = models.FloatField(validators=[MinValueValidator(0), MaxValueValidator(100)])
    is_control = models.BooleanField(default=False)
    recommender = models.JSONField(default=dict, help_text='{"name": ..., "params": {...}}')
    forced_user_ids = models.JSONField(default=list, blank=True, help_text="QA: these users always get this variant")

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["experiment", "key"], name="variant_key_unique_in_experiment")]

    def __str__(self):
        return f"{self.experiment.key}/{self.key}"


class Rollout(models.Model):
    """A ship in steps: the shipped variant's config reaches a growing share of the
    users in no experiment (steps in percent, each held `hold_hours`), then becomes the
    stage's default. Stopping it leaves the default as it was."""

    class Status(models.TextChoices):
        ROLLING = "rolling"
        DONE = "done"
        STOPPED = "stopped"

    experiment = models.OneToOneField(Experiment, on_delete=models.CASCADE, related_name="rollout")
    variant = models.CharField(max_length=64)
    surface = models.CharField(max_length=32, choices=SURFACES)
    stage = models.CharField(max_length=16, choices=STAGES)
    recommender = models.JSONField(help_text="the config being rolled out")
    steps = models.JSONField(help_text="percent of users at each step, ending at 100")
    hold_hours = models.FloatField()
    step = models.PositiveSmallIntegerField(default=0, help_text="index into steps")
    step_started_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ROLLING)
    salt = models.CharField(max_length=32, default=new_salt, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["surface", "stage"], condition=models.Q(status="rolling"),
                                               name="one_rollout_per_stage")]

    def __str__(self):
        return f"{self.experiment_id} rollout {self.status} at {self.percent}%"

    @property
    def percent(self) -> float:
        return float(self.steps[self.step])


class VariantServing(models.Model):
    """How often a variant's configured recommender served its stage, per day: a
    variant that is fast only because it falls back must show it in its results."""

    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="serving")
    day = models.DateField()
    requests = models.BigIntegerField(default=0)
    fallbacks = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["variant", "day"], name="variant_serving_once_per_day")]

    def __str__(self):
        return f"{self.variant_id} on {self.day}: {self.fallbacks}/{self.requests} fell back"


class Phase(models.Model):
    """A stretch of a started experiment with one set of weights (docs/assignment.md,
    "Phases"). The first start opens phase 1; every later weight change opens the next.
    A traffic ramp stays inside the phase and is kept in `ramps` for the timeline. A
    phase ends where the next one starts; analysis reads one phase at a time."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="phases")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    weights = models.JSONField(help_text="{variant key: weight} for the whole phase")
    traffic_percent = models.FloatField(help_text="at the phase's start; see ramps for later changes")
    ramps = models.JSONField(default=list, blank=True,
                             help_text='traffic changes inside the phase: [{"at", "from", "to"}], oldest first')

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["experiment", "number"], name="phase_number_unique")]

    def __str__(self):
        return f"{self.experiment_id} phase {self.number}"


class AuditLog(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="audit_log")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=32)
    note = models.CharField(max_length=500, blank=True, help_text="why, when the platform acted by itself")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.experiment.key} {self.action} at {self.at:%Y-%m-%d %H:%M}"


class Exposure(models.Model):
    """The first time a user was assigned to an experiment: the denominator of every
    metric. One row per (experiment, user); later exposures only move the time back."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="exposures")
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="exposures")
    user_id = models.CharField(max_length=255)
    first_exposed_at = models.DateTimeField()
    attributes = models.JSONField(default=dict, blank=True)
    forced = models.BooleanField(default=False, help_text="QA allow-list; left out of analysis")
    other_variant = models.BooleanField(
        default=False, help_text="also reported in another variant than this one (counted in the results' health)")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "user_id"], name="exposure_once_per_user"),
        ]
        indexes = [models.Index(fields=["experiment", "variant"])]

    def __str__(self):
        return f"{self.user_id} in {self.experiment_id}/{self.variant_id}"


class ConfigVersion(models.Model):
    """One row whose number goes up with every change that affects assignment; serving
    processes compare it with the version they hold, at most once a second."""

    version = models.BigIntegerField(default=0)
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"assignment config v{self.version}"
