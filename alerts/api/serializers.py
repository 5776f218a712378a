from rest_framework import serializers

from alerts.conditions import EVENTS


class WebhookSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    url = serializers.CharField(max_length=2000, help_text="http(s) URL of the receiver; private, loopback and "
                                                           "link-local targets are refused unless "
                                                           "WEBHOOK_ALLOW_PRIVATE_NETWORKS=true")
    events = serializers.ListField(child=serializers.CharField(max_length=64),
                                   help_text=f"any of: {', '.join(EVENTS)}")
    secret = serializers.CharField(write_only=True, max_length=200,
                                   help_text="at least 16 characters; signs each body (X-Pinpoint-Signature: "
                                             "sha256=<hex HMAC-SHA256>); never shown again")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    is_active = serializers.BooleanField(required=False, default=True)
    failing = serializers.BooleanField(read_only=True, help_text="its recent attempts keep failing")
    consecutive_failures = serializers.IntegerField(read_only=True)
    last_status_code = serializers.IntegerField(read_only=True, allow_null=True)
    last_delivery_at = serializers.DateTimeField(read_only=True, allow_null=True)
    owner = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)

    def get_owner(self, webhook) -> str | None:
        return webhook.owner.get_username() if webhook.owner else None


class DeliverySerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="X-Pinpoint-Delivery, the same on every attempt")
    channel = serializers.CharField()
    event = serializers.CharField()
    experiment = serializers.SerializerMethodField()
    state = serializers.CharField(help_text="pending, retrying, delivered or failed")
    attempts = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True, help_text="the last attempt's HTTP status")
    error = serializers.CharField()
    history = serializers.ListField(child=serializers.DictField())
    payload = serializers.DictField()
    created_at = serializers.DateTimeField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)

    def get_experiment(self, delivery) -> str | None:
        return delivery.payload.get("experiment", {}).get("key")
