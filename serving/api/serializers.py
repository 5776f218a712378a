from rest_framework import serializers

from experiments.models import STAGES


class CloseupItemSerializer(serializers.Serializer):
    pin_id = serializers.IntegerField()
    position = serializers.IntegerField()
    score = serializers.FloatField()
    team = serializers.CharField(required=False,
                                 help_text="interleaving only: the variant key of the ranker that placed the item")


class ShapedBySerializer(serializers.Serializer):
    experiment = serializers.CharField()
    variant = serializers.CharField()
    layer = serializers.CharField()


class StageServedSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=STAGES)
    recommender = serializers.CharField(help_text="the recommender that actually served the stage")
    version = serializers.CharField(allow_null=True, help_text="its model version")
    fallback_reason = serializers.CharField(allow_null=True, help_text="why the configured one did not serve it")
    team = serializers.CharField(required=False, help_text="interleaving only: the variant this recommender is, "
                                                           "one entry per team of a merged list")


class CloseupResponseSerializer(serializers.Serializer):
    request_id = serializers.UUIDField()
    pin_id = serializers.IntegerField()
    user_id = serializers.CharField()
    experiment = serializers.CharField(allow_null=True, help_text="deprecated: the first of `assignments`")
    variant = serializers.CharField(allow_null=True, help_text="deprecated: the first of `assignments`")
    recommender = serializers.CharField(help_text="deprecated: the last of `served_by`")
    fallback_reason = serializers.CharField(allow_null=True, help_text="each stage that fell back, and why")
    hidden_pins_filtered = serializers.BooleanField(
        help_text="false only while the database cannot be read: the user's hidden pins were not filtered out")
    assignments = ShapedBySerializer(many=True, help_text="every experiment whose variant shaped this response "
                                                          "(only these record an exposure)")
    served_by = StageServedSerializer(many=True)
    items = CloseupItemSerializer(many=True)
