import math

from rest_framework import serializers

from analysis.metric_kinds import registry as metric_kinds
from analysis.models import DEFAULT_CAP_PERCENTILE, MAX_WINDOW_DAYS, AnalysisReport, Metric, filter_errors
from analysis.stats import multiple_testing
from analysis.stats import power as power_stats
from events.validation import EVENT_TYPES


class MetricSerializer(serializers.ModelSerializer):
    numerator_types = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPES), min_length=1)
    denominator_types = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPES), required=False,
                                              default=list)

    numerator_filters = serializers.JSONField(
        required=False, default=list, help_text='[{"property": "platform", "op": "eq", "value": "ios"}]: only events '
                                                "whose properties pass (op eq, neq or in with a list of strings)")
    denominator_filters = serializers.JSONField(required=False, default=list,
                                                help_text="ratio metrics: the denominator's property filters")
    window_days = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_WINDOW_DAYS,
        help_text="count events this many days after the user's first exposure (1–90); sets window_hours")

    class Meta:
        model = Metric
        fields = ["key", "name", "description", "kind", "numerator_types", "denominator_types", "aggregation",
                  "denominator_aggregation", "numerator_filters", "denominator_filters", "direction", "is_guardrail",
                  "window_days", "window_hours", "cuped_pre_period_days", "cap_percentile", "guardrail_margin",
                  "min_users_per_variant", "min_events_per_variant", "is_builtin", "created_at"]
        read_only_fields = ["is_builtin", "created_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        hours = instance.window_hours
        data["window_days"] = hours / 24 if hours and hours % 24 == 0 else None
        return data

    def validate_numerator_filters(self, value):
        if messages := filter_errors(value):
            raise serializers.ValidationError(messages)
        return value

    def validate_denominator_filters(self, value):
        return self.validate_numerator_filters(value)

    def _finite(self, value):
        if value is not None and not math.isfinite(value):
            raise serializers.ValidationError("A finite number, or null.")
        return value

    def validate_cap_percentile(self, value):
        return self._finite(value)

    def validate_guardrail_margin(self, value):
        return self._finite(value)

    def validate(self, attrs):
        days = attrs.pop("window_days", None)
        if days is not None:
            if attrs.get("window_hours") not in (None, days * 24):
                raise serializers.ValidationError({"window_days": ["Give window_days or window_hours, not both."]})
            attrs["window_hours"] = days * 24
        # An unsaved row, so that a field left out takes the model's default.
        metric = Metric(**{f: attrs[f] for f in ("kind", "numerator_types", "denominator_types", "aggregation",
                                                 "denominator_aggregation", "denominator_filters") if f in attrs})
        problems = metric_kinds.validate(metric)
        if problems:
            raise serializers.ValidationError({field: [message] for field, message in problems.items()})
        if self.instance is None and "cap_percentile" not in attrs and attrs.get("kind") == "mean":
            attrs["cap_percentile"] = DEFAULT_CAP_PERCENTILE
        return attrs


def _phase_field(**kwargs):
    return serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None,
        help_text="the phase to analyse (users first exposed in it); default: the current phase", **kwargs)


class PhaseQuerySerializer(serializers.Serializer):
    phase = _phase_field()


class AnalyzeRequestSerializer(serializers.Serializer):
    phase = _phase_field()
    segment_by = serializers.RegexField(r"^[A-Za-z0-9_.-]{1,64}$", required=False, allow_null=True, default=None,
                                        help_text="an exposure attribute to split results by (platform, country…)")
    cuped = serializers.BooleanField(required=False, default=True)
    backfill_series = serializers.BooleanField(
        required=False, default=False,
        help_text="recompute every day of the daily series from the events (otherwise past days are carried over "
                  "from the previous report)")


class ReportSummarySerializer(serializers.ModelSerializer):
    requested_by = serializers.SerializerMethodField()

    class Meta:
        model = AnalysisReport
        fields = ["id", "status", "trigger", "phase", "requested_by", "started_at", "computed_at", "as_of",
                  "duration_ms", "error"]

    def get_requested_by(self, report) -> str | None:
        return report.requested_by.get_username() if report.requested_by_id else None


class ResultsSerializer(serializers.Serializer):
    """Documentation of the results document (see docs/statistics.md)."""

    experiment = serializers.CharField()
    phase = serializers.DictField(required=False, help_text='{"number", "started_at", "ended_at"}: the users '
                                  "first exposed in this phase; absent for an experiment never started")
    report_id = serializers.IntegerField()
    status = serializers.CharField()
    computed_at = serializers.DateTimeField()
    as_of = serializers.DateTimeField()
    srm = serializers.DictField()
    metrics = serializers.ListField(child=serializers.DictField())
    power = serializers.DictField(allow_null=True)
    series = serializers.DictField(required=False)
    segments = serializers.ListField(child=serializers.DictField(), required=False)
    settings = serializers.DictField()
    serving = serializers.ListField(
        child=serializers.DictField(), required=False,
        help_text="per variant: closeup requests its config shaped, how many fell back, and the rate")
    latest_failure = serializers.DictField(required=False)
    offline = serializers.DictField(
        required=False,
        help_text='each variant\'s offline numbers from the version it serves, now: {"variants": [{"variant", '
                  '"is_control", "recommender", "version", "ndcg_at_10", "coverage", "users", "source"}], '
                  '"comparisons": [{"variant", "baseline", "comparable", "ndcg_change", "ndcg_relative_change", '
                  '"source", "reason"}]}; numbers null where nothing measured them (docs/recommenders.md, '
                  '"Offline beside online"). Only in GET …/results')


class OfflineOnlineQuerySerializer(serializers.Serializer):
    include_running = serializers.BooleanField(
        required=False, default=False, help_text="also running and paused experiments (marked by their status)")


class OfflineOnlineRowSerializer(serializers.Serializer):
    experiment = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    design = serializers.CharField()
    variant = serializers.CharField(help_text="the treatment")
    baseline = serializers.CharField(help_text="the control")
    variant_recommender = serializers.CharField(help_text="name@version the treatment served")
    baseline_recommender = serializers.CharField()
    offline = serializers.DictField(allow_null=True, help_text='{"comparable", "ndcg_change", '
                                    '"ndcg_relative_change", "source", "reason"}')
    online = serializers.DictField(allow_null=True, help_text='{"kind": "relative_lift" or "preference_delta", '
                                   '"metric", "value", "ci_low", "ci_high", "significant", "higher_is_better", '
                                   '"enough_data"}; null: no report yet')
    agree = serializers.BooleanField(allow_null=True, help_text="offline and online point the same way; null: "
                                     "one is missing, not comparable or exactly 0")


class OfflineOnlineSummarySerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    paired = serializers.IntegerField(help_text="rows with a comparable offline change and an online result")
    directed = serializers.IntegerField(help_text="paired rows where neither number is exactly 0")
    agree = serializers.IntegerField(help_text="directed rows where both point the same way")
    spearman = serializers.FloatField(allow_null=True, help_text="rank correlation of the offline relative NDCG "
                                      "change with the online improvement; null below 3 paired rows")
    spearman_p = serializers.FloatField(allow_null=True)


class OfflineOnlineSerializer(serializers.Serializer):
    include_running = serializers.BooleanField()
    summary = OfflineOnlineSummarySerializer()
    rows = OfflineOnlineRowSerializer(many=True)


MAX_ARMS = 10


class PowerSerializer(serializers.Serializer):
    mde = serializers.FloatField(min_value=0.0001, max_value=10, required=False,
                                 help_text="relative minimum detectable effect (0.02 is 2%)")
    alpha = serializers.FloatField(min_value=0.0001, max_value=0.5, required=False, default=0.05)
    power = serializers.FloatField(min_value=0.05, max_value=0.999, required=False, default=0.8)
    baseline_mean = serializers.FloatField(required=False, min_value=-1e12, max_value=1e12)
    unit_variance = serializers.FloatField(min_value=0, max_value=1e24, required=False)
    users_per_day = serializers.FloatField(min_value=0, max_value=1e12, required=False,
                                           help_text="the control's users per day (per variant for an equal split)")
    weights = serializers.CharField(required=False, max_length=200,
                                    help_text="the split, control first, e.g. 90,10 or 1,1,1 (default: the variants')")
    correction = serializers.ChoiceField(choices=multiple_testing.METHODS, required=False,
                                         help_text="holm, bh or none (default: the analysis')")

    def validate_weights(self, value):
        parts = [x.strip() for x in value.split(",")]
        try:
            weights = [float(x) for x in parts]
        except ValueError:
            raise serializers.ValidationError("Give numbers separated by commas, the control first, e.g. 90,10.") \
                from None
        if not 2 <= len(weights) <= MAX_ARMS:
            raise serializers.ValidationError(f"Give a control and 1 to {MAX_ARMS - 1} treatments "
                                              f"({len(weights)} given).")
        if power_stats.normalized_weights(weights) is None or any(not 0 < w <= 1e6 for w in weights):
            raise serializers.ValidationError("Every weight must be a positive finite number (at most 1,000,000).")
        return weights


    def validate(self, data):
        # A float field takes "nan" and "inf"; neither is a number a plan can use.
        bad = {k: ["Must be a finite number."] for k, v in data.items()
               if isinstance(v, float) and not math.isfinite(v)}
        if bad:
            raise serializers.ValidationError(bad)
        if data["power"] <= data["alpha"]:
            raise serializers.ValidationError({"power": [f"Must be greater than alpha ({data['alpha']:g})."]})
        return data
