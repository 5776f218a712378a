from django.db import models


class Pin(models.Model):
    id = models.BigIntegerField(primary_key=True)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    topic = models.IntegerField(db_index=True)
    created_at = models.DateTimeField()

    def __str__(self):
        return f"{self.id}: {self.title}"


class Board(models.Model):
    id = models.BigIntegerField(primary_key=True)
    name = models.CharField(max_length=200)
    owner = models.CharField(max_length=255, db_index=True, help_text="user id of the curator")
    topic = models.IntegerField()

    def __str__(self):
        return self.name


class BoardPin(models.Model):
    """A save: the pin is on the board. The edges of the pin-board graph."""

    board = models.ForeignKey(Board, on_delete=models.CASCADE)
    pin = models.ForeignKey(Pin, on_delete=models.CASCADE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["board", "pin"], name="boardpin_once")]
        indexes = [models.Index(fields=["pin", "board"])]

    def __str__(self):
        return f"{self.pin_id} on {self.board_id}"


class Interaction(models.Model):
    """A user's engagement with a pin in the offline training data."""

    user_id = models.CharField(max_length=255)
    pin = models.ForeignKey(Pin, on_delete=models.CASCADE)
    weight = models.FloatField(default=1.0)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["user_id", "at"])]

    def __str__(self):
        return f"{self.user_id} -> {self.pin_id}"


class BuildJob(models.Model):
    """One build or retrain, run on the builds queue: what it is doing now and how far
    it got, for the recommenders page and the API. The worker writes it as it goes;
    its heartbeat tells a sweep that a job whose worker died must run again."""

    class Kind(models.TextChoices):
        BUILD = "build"
        RETRAIN = "retrain"

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.BUILD)
    names = models.JSONField(default=list, blank=True, help_text="recommenders to build; empty: every one")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    steps_done = models.IntegerField(default=0)
    steps_total = models.IntegerField(default=0)
    step = models.CharField(max_length=200, blank=True, help_text="what it is doing now")
    version = models.CharField(max_length=32, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    attempts = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.kind} #{self.pk} ({self.state})"


class RetrainPolicy(models.Model):
    """Per surface: whether a retrained version that passes its gate starts an
    experiment against the version in use by itself, and how."""

    class Design(models.TextChoices):
        INTERLEAVING = "interleaving"
        AB = "ab"

    surface = models.CharField(max_length=32, unique=True)
    auto_experiment = models.BooleanField(default=False)
    design = models.CharField(max_length=16, choices=Design.choices, default=Design.INTERLEAVING)
    traffic_percent = models.FloatField(default=10.0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"retrain policy of {self.surface}"


class ModelVersion(models.Model):
    """A built artifact under RECOMMENDER_MODELS_DIR/<name>/<version>/. The catalog
    (pin ids, topics, user histories) is built alongside as name "catalog"."""

    name = models.CharField(max_length=64)
    version = models.CharField(max_length=32)
    params = models.JSONField(default=dict)
    path = models.CharField(max_length=500)
    built_at = models.DateTimeField(auto_now_add=True)
    build_seconds = models.FloatField()
    size_bytes = models.BigIntegerField()
    metrics = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)
    # The version's numbers on held-out recent data (retrain's gate), and the gate's verdict;
    # a version that failed it is kept with its numbers and never served.
    offline = models.JSONField(default=dict, blank=True)
    gate = models.JSONField(default=dict, blank=True)
    servable = models.BooleanField(default=True)
    build_job = models.ForeignKey(BuildJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="versions")

    class Meta:
        ordering = ["name", "-built_at"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="model_version_unique"),
            models.UniqueConstraint(fields=["name"], condition=models.Q(is_active=True), name="one_active_per_name"),
        ]

    def __str__(self):
        return f"{self.name}@{self.version}{' (active)' if self.is_active else ''}"


class OfflineEvaluation(models.Model):
    """One recommender's offline numbers on one dataset (evaluate_recommenders)."""

    dataset = models.CharField(max_length=32)
    recommender = models.CharField(max_length=64)
    params = models.JSONField(default=dict)
    k = models.IntegerField(default=10)
    ndcg = models.FloatField()
    precision = models.FloatField()
    recall = models.FloatField()
    map = models.FloatField()
    coverage = models.FloatField()
    users = models.IntegerField()
    build_seconds = models.FloatField()
    p99_ms = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-ndcg"]

    def __str__(self):
        return f"{self.recommender} on {self.dataset}: nDCG@{self.k} {self.ndcg:.3f}"
