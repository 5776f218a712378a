from rest_framework import serializers

from events.validation import EVENT_TYPES


class EventSerializer(serializers.Serializer):
    """Documentation only: events are validated in one pass by events/validation.py."""

    event_id = serializers.UUIDField(help_text="client-made; the idempotency key")
    user_id = serializers.CharField(max_length=255)
    type = serializers.ChoiceField(choices=list(EVENT_TYPES))
    pin_id = serializers.IntegerField(min_value=0)
    request_id = serializers.UUIDField(required=False, allow_null=True,
                                       help_text="the closeup response the event belongs to")
    position = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    timestamp = serializers.DateTimeField(help_text="ISO 8601 with a time zone")
    value = serializers.FloatField(required=False, allow_null=True,
                                   help_text="what the client measured, e.g. dwell time in ms; finite, |value| ≤ 1e15")
    properties = serializers.DictField(
        required=False, allow_null=True,
        help_text="at most 20 keys (letters, digits, _ . -, up to 64 characters) with string (≤ 256 characters), "
                  "number, boolean or null values, no nesting, at most 2,048 bytes as JSON; e.g. "
                  '{"platform": "ios", "app_version": "12.3.1"}')


class EventsRequestSerializer(serializers.Serializer):
    events = EventSerializer(many=True, help_text="1 to 1,000 events")


class RejectedEventSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class EventsResponseSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="events durably accepted for storage")
    duplicates = serializers.IntegerField(help_text="events repeating an event_id earlier in the same request")
    rejected = RejectedEventSerializer(many=True)


class IngestionStatsSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    stored = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    dead_lettered = serializers.IntegerField()
    pending_batches = serializers.IntegerField()
    pending_events = serializers.IntegerField()
    broker_queue_depth = serializers.IntegerField(allow_null=True)
