from rest_framework import serializers


class CloseupItemSerializer(serializers.Serializer):
    pin_id = serializers.IntegerField()
    position = serializers.IntegerField()
    score = serializers.FloatField()


class CloseupResponseSerializer(serializers.Serializer):
    request_id = serializers.UUIDField()
    pin_id = serializers.IntegerField()
    user_id = serializers.CharField()
    experiment = serializers.CharField(allow_null=True)
    variant = serializers.CharField(allow_null=True)
    recommender = serializers.CharField(help_text="the recommender that actually served the list")
    fallback_reason = serializers.CharField(allow_null=True)
    hidden_pins_filtered = serializers.BooleanField(
        help_text="false only while the database cannot be read: the user's hidden pins were not filtered out")
    items = CloseupItemSerializer(many=True)
