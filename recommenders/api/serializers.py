from rest_framework import serializers


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


class RecommenderSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    stages = serializers.ListField(child=serializers.CharField(), help_text="closeup stages it can serve")
    offline_ndcg_at_10 = serializers.DictField(allow_null=True, help_text="latest offline NDCG@10 per dataset, "
                                                                          "where evaluated")
    versions = RecommenderVersionSerializer(many=True, help_text="newest first")
