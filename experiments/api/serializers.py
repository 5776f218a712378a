from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from experiments import rollouts
from experiments.models import BUCKETS, DESIGNS, STAGES, SURFACES, Experiment, Layer
from experiments.selectors import ordered_weights, overshadowed_by, running_experiments

KEY_RULE = "Use only letters, digits, hyphens and underscores, for example ranker-v2."


def _key_field(**kwargs):
    return serializers.SlugField(max_length=64, error_messages={"invalid": KEY_RULE}, **kwargs)


class LayerSerializer(serializers.ModelSerializer):
    experiments = serializers.SerializerMethodField()

    class Meta:
        model = Layer
        fields = ["key", "name", "surface", "stage", "created_at", "experiments"]
        read_only_fields = ["created_at", "experiments"]
        extra_kwargs = {"key": {"validators": [], "error_messages": {"invalid": KEY_RULE}}}

    def get_experiments(self, layer) -> list[dict]:
        return [
            {"key": e.key, "status": e.status, "layer_buckets": [e.bucket_start, e.bucket_end]}
            for e in layer.experiments.all()
        ]


class RecommenderConfigSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    params = serializers.DictField(required=False, default=dict)
    version = serializers.CharField(max_length=32, required=False,
                                    help_text="a built version to serve; absent: the active one when the experiment "
                                              "first starts, frozen then")


class VariantSerializer(serializers.Serializer):
    key = _key_field()
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    weight = serializers.FloatField(min_value=0, max_value=100)
    is_control = serializers.BooleanField(default=False)
    recommender = RecommenderConfigSerializer()
    forced_user_ids = serializers.ListField(child=serializers.CharField(max_length=255), required=False, default=list)


def _buckets_field(**kwargs):
    return serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=BUCKETS), min_length=2, max_length=2,
        help_text=f"Half-open [start, end) slice of the layer's {BUCKETS} buckets.", **kwargs,
    )


class LayerKeyField(serializers.SlugRelatedField):
    """A layer by key; a value no key could be (a NUL byte, which PostgreSQL refuses in
    any text) is a 400 like any unknown key, not a query that fails."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or "\x00" in data or len(data) > 64:
            self.fail("does_not_exist", slug_name=self.slug_field, value=str(data)[:64].replace("\x00", "\\0"))
        return super().to_internal_value(data)


class ExperimentCreateSerializer(serializers.Serializer):
    key = _key_field()
    name = serializers.CharField(max_length=200)
    hypothesis = serializers.CharField(required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    surface = serializers.ChoiceField(choices=SURFACES, default="closeup")
    design = serializers.ChoiceField(
        choices=DESIGNS, default="ab",
        help_text="ab: users split between the variants; interleaving: two rankers' lists merged by team draft for "
                  "every user, in a ranking or whole layer (docs/interleaving.md)")
    layer = LayerKeyField(slug_field="key", queryset=Layer.objects.all())
    layer_buckets = _buckets_field(required=False)
    traffic_percent = serializers.FloatField(min_value=0, max_value=100, default=100)
    variants = VariantSerializer(many=True)
    targeting = serializers.DictField(required=False, default=dict)
    primary_metric = serializers.CharField(max_length=64, default="closeup_ctr")
    guardrail_metrics = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list)
    minimum_detectable_effect = serializers.FloatField(min_value=0, required=False, default=0.02)
    end_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    pause_on_guardrail_regression = serializers.BooleanField(
        required=False, default=False,
        help_text="pause by itself when an analysis finds a guardrail regressed (an alert says so)")
    guardrail_margins = serializers.DictField(
        child=serializers.FloatField(min_value=0, max_value=1, allow_null=True), required=False, default=dict,
        help_text="guardrail metric -> relative margin for this experiment (null: no non-inferiority test); "
                  "a guardrail not named uses its metric's margin")
    template = serializers.SlugField(
        required=False, help_text="a template's key: the primary metric, guardrails with margins, MDE and targeting "
                                  "this request does not give come from it")


class ExperimentUpdateSerializer(serializers.Serializer):
    """Fields PATCH may carry; which of them may change depends on the status."""

    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    hypothesis = serializers.CharField(required=False, allow_blank=True)
    end_at = serializers.DateTimeField(required=False, allow_null=True)
    traffic_percent = serializers.FloatField(min_value=0, max_value=100, required=False)
    weights = serializers.DictField(child=serializers.FloatField(min_value=0, max_value=100), required=False)
    forced_user_ids = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField(max_length=255)), required=False,
        help_text="variant key -> user ids always given that variant",
    )
    targeting = serializers.DictField(required=False)
    layer_buckets = _buckets_field(required=False)
    primary_metric = serializers.CharField(max_length=64, required=False)
    guardrail_metrics = serializers.ListField(child=serializers.CharField(max_length=64), required=False)
    minimum_detectable_effect = serializers.FloatField(min_value=0, required=False)
    pause_on_guardrail_regression = serializers.BooleanField(required=False)
    guardrail_margins = serializers.DictField(
        child=serializers.FloatField(min_value=0, max_value=1, allow_null=True), required=False)


class ShipSerializer(serializers.Serializer):
    variant = serializers.SlugField(required=False, help_text="the variant to ship (ship only)")
    rollout = serializers.JSONField(
        required=False, help_text="ship only: percent of users at each step, ending at 100, e.g. [10, 50, 100]; "
                                  "without it the variant reaches everyone at once")
    hold_hours = serializers.JSONField(required=False, help_text="ship only: hours each step is held (default 24)")


class RolloutSerializer(serializers.Serializer):
    variant = serializers.CharField()
    stage = serializers.CharField()
    status = serializers.ChoiceField(choices=["rolling", "done", "stopped"])
    steps = serializers.ListField(child=serializers.FloatField())
    step = serializers.IntegerField(help_text="1-based: which of the steps is live")
    percent = serializers.FloatField(help_text="share of users in no experiment served the shipped config")
    hold_hours = serializers.FloatField()
    step_started_at = serializers.DateTimeField()
    next_step_at = serializers.DateTimeField(allow_null=True)
    recommender = serializers.DictField()


class ExperimentSerializer(serializers.ModelSerializer):
    layer = serializers.SlugRelatedField(slug_field="key", read_only=True)
    layer_buckets = serializers.SerializerMethodField()
    owner = serializers.SerializerMethodField()
    variants = serializers.SerializerMethodField()
    rollout = serializers.SerializerMethodField()
    phases = serializers.SerializerMethodField()
    overshadowed_by = serializers.SerializerMethodField()

    class Meta:
        model = Experiment
        fields = [
            "key", "name", "hypothesis", "description", "owner", "surface", "design", "layer", "layer_buckets",
            "traffic_percent", "status", "targeting", "primary_metric", "guardrail_metrics",
            "minimum_detectable_effect", "pause_on_guardrail_regression", "guardrail_margins", "template",
            "variants", "phases", "shipped_variant",
            "rollout", "started_at", "stopped_at", "end_at", "created_at", "updated_at", "overshadowed_by",
        ]
        read_only_fields = fields

    def get_layer_buckets(self, e) -> list[int]:
        return [e.bucket_start, e.bucket_end]

    def get_owner(self, e) -> str | None:
        return e.owner.get_username() if e.owner else None

    @extend_schema_field(RolloutSerializer(allow_null=True))
    def get_rollout(self, e) -> dict | None:
        return rollouts.describe(getattr(e, "rollout", None))

    def get_variants(self, e) -> list[dict]:
        return [
            {"key": v.key, "name": v.name, "weight": v.weight, "is_control": v.is_control,
             "recommender": v.recommender, "forced_user_ids": v.forced_user_ids}
            for v in e.variants.all()
        ]

    def get_overshadowed_by(self, e) -> list[dict]:
        """Running experiments that decide the closeup before this one for the share of its
        users they include: it shapes no list for those users while they run."""
        if e.status in (Experiment.Status.STOPPED, Experiment.Status.SHIPPED):
            return []
        if "running" not in self.context:  # once per response, not per experiment of a list
            self.context["running"] = running_experiments()
        return overshadowed_by(e, self.context["running"])

    def get_phases(self, e) -> list[dict]:
        """Oldest first; traffic_percent is the phase's at its start, ramps its changes since."""
        phases = sorted(e.phases.all(), key=lambda p: p.number)
        return [
            {"number": p.number, "started_at": serializers.DateTimeField().to_representation(p.started_at),
             "ended_at": serializers.DateTimeField().to_representation(phases[i + 1].started_at)
             if i + 1 < len(phases) else None,
             "weights": ordered_weights(e, p.weights), "traffic_percent": p.traffic_percent, "ramps": p.ramps}
            for i, p in enumerate(phases)
        ]


class AssignmentRequestSerializer(serializers.Serializer):
    """Documentation only: the view validates by hand (see api/validation.py)."""

    user_id = serializers.CharField(max_length=255)
    attributes = serializers.DictField(required=False)
    surface = serializers.ChoiceField(choices=SURFACES, default="closeup")


class AssignmentSerializer(serializers.Serializer):
    experiment = serializers.CharField()
    variant = serializers.CharField()
    layer = serializers.CharField()
    recommender = serializers.CharField(help_text="name of the variant's recommender")


class AssignmentResponseSerializer(serializers.Serializer):
    user_id = serializers.CharField()
    assignments = AssignmentSerializer(many=True)


class BatchUserSerializer(serializers.Serializer):
    user_id = serializers.CharField(max_length=255)
    attributes = serializers.DictField(required=False)


class BatchAssignmentRequestSerializer(serializers.Serializer):
    users = BatchUserSerializer(many=True)
    surface = serializers.ChoiceField(choices=SURFACES, default="closeup")


class BatchAssignmentResponseSerializer(serializers.Serializer):
    results = AssignmentResponseSerializer(many=True)


class StageDefaultSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=STAGES)
    recommender = serializers.DictField(allow_null=True,
                                        help_text='{"name", "params", "version"?}; null: nothing ranks')


class SurfaceChangeSerializer(serializers.Serializer):
    stage = serializers.CharField()
    before = serializers.DictField(allow_null=True)
    after = serializers.DictField(allow_null=True)
    source = serializers.CharField()
    actor = serializers.CharField(allow_null=True)
    at = serializers.DateTimeField()


class HoldoutSerializer(serializers.Serializer):
    percent = serializers.FloatField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    active = serializers.BooleanField()
    experiment = serializers.CharField(allow_null=True, help_text="the experiment that measures it: its results "
                                                                  "are the holdout's report")
    defaults = serializers.DictField(help_text="what the held-back users are served, per stage")


class SurfaceSerializer(serializers.Serializer):
    surface = serializers.CharField()
    defaults = StageDefaultSerializer(many=True, help_text="what users in no experiment are served, per stage")
    rollouts = RolloutSerializer(many=True, help_text="ships in progress: a share of users already gets them")
    holdout = HoldoutSerializer(allow_null=True)
    history = SurfaceChangeSerializer(many=True, help_text="newest first")


class HoldoutStartSerializer(serializers.Serializer):
    percent = serializers.JSONField(help_text="share of the surface's users held back, above 0 and at most 50")


class SurfaceDefaultUpdateSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=STAGES)
    recommender = serializers.JSONField(allow_null=True,
                                        help_text='{"name", "params", "version"?}, or null to clear the stage')


class GuardrailSerializer(serializers.Serializer):
    metric = serializers.CharField(max_length=64)
    margin = serializers.FloatField(allow_null=True, required=False, help_text="relative (0.02: 2% worse at most); "
                                                                               "null: no non-inferiority test")


class TemplateSerializer(serializers.Serializer):
    """Documentation of a template (templates are validated by experiments/templates.py)."""

    key = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    primary_metric = serializers.CharField(max_length=64, required=False)
    guardrails = GuardrailSerializer(many=True, required=False)
    minimum_detectable_effect = serializers.FloatField(required=False, help_text="relative, as a fraction")
    targeting = serializers.DictField(required=False)
    owner = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def get_owner(self, template) -> str | None:
        return template.owner.get_username() if template.owner else None
