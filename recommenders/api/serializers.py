from rest_framework import serializers

from experiments.models import DESIGNS


class RecommenderVersionSerializer(serializers.Serializer):
    version = serializers.CharField()
    built_at = serializers.DateTimeField()
    active = serializers.BooleanField(help_text="what a variant without a pinned version serves")
    params = serializers.DictField()
    build_seconds = serializers.FloatField()
    size_bytes = serializers.IntegerField()
    metrics = serializers.DictField(help_text="what the build measured (training set, catalog fingerprint)")
    loaded_bytes = serializers.IntegerField(
        allow_null=True, help_text="memory of its arrays in the process that answered, where that process holds it "
                                   "(active, or pinned by a running experiment or surface default); null: not held")
    servable = serializers.BooleanField(help_text="false: it failed its offline gate, and is kept but never served")
    offline = serializers.DictField(help_text="its numbers on a retrain's held-out day: ndcg_at_10, coverage, users, "
                                              "holdout_start, holdout_end ({} when never measured)")
    gate = serializers.DictField(help_text="the retrain gate's verdict: passed, reasons, ndcg_change, "
                                           "coverage_change, baseline_version, baseline, rule ({} when not gated)")
    experiments = serializers.ListField(child=serializers.CharField(),
                                        help_text="keys of the experiments whose variants pin this version")
    build_job = serializers.IntegerField(allow_null=True, help_text="the build job that made it")


class RecommenderSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    stages = serializers.ListField(child=serializers.CharField(), help_text="closeup stages it can serve")
    offline_ndcg_at_10 = serializers.DictField(allow_null=True, help_text="latest offline NDCG@10 per dataset, "
                                                                          "where evaluated")
    versions = RecommenderVersionSerializer(many=True, help_text="newest first")


class BuildJobSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    kind = serializers.ChoiceField(choices=["build", "retrain"], default="build",
                                   help_text="build: new versions of `names` from all the data, made active; "
                                             "retrain: from the last RETRAIN_WINDOW_DAYS, gated, not made active")
    names = serializers.ListField(child=serializers.CharField(), required=False, default=list,
                                  help_text="recommenders to build; empty: every registered one")
    state = serializers.CharField(read_only=True, help_text="queued, running, succeeded or failed")
    steps_done = serializers.IntegerField(read_only=True)
    steps_total = serializers.IntegerField(read_only=True)
    progress = serializers.FloatField(read_only=True, allow_null=True, help_text="steps_done / steps_total")
    step = serializers.CharField(read_only=True, help_text="what it is doing now, or how it ended")
    version = serializers.CharField(read_only=True)
    summary = serializers.DictField(read_only=True)
    error = serializers.CharField(read_only=True)
    attempts = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    started_at = serializers.DateTimeField(read_only=True, allow_null=True)
    heartbeat_at = serializers.DateTimeField(read_only=True, allow_null=True)
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)

    def to_representation(self, job):
        data = super().to_representation(job)
        data["progress"] = round(job.steps_done / job.steps_total, 4) if job.steps_total else None
        return data


class RetrainPolicySerializer(serializers.Serializer):
    surface = serializers.CharField(read_only=True)
    auto_experiment = serializers.BooleanField(
        help_text="start an experiment of a retrained version that passed its gate against the version in use")
    design = serializers.ChoiceField(choices=DESIGNS, default="interleaving")
    traffic_percent = serializers.FloatField(min_value=0.1, max_value=100, default=10.0,
                                             help_text="share of the retrain layer's users in that experiment")
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)
