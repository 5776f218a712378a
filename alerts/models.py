import uuid

from django.conf import settings
from django.db import models

from alerts.conditions import EVENTS


class Webhook(models.Model):
    """A receiver of alerts: every event it subscribes to is POSTed to its URL, signed
    with its secret (alerts/signing.py)."""

    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list, help_text=f"any of: {', '.join(EVENTS)}")
    # Kept as given: the HMAC needs it. Never shown again after registration.
    secret = models.CharField(max_length=200)
    description = models.CharField(max_length=200, blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    is_active = models.BooleanField(default=True)
    failing = models.BooleanField(default=False, help_text="its recent deliveries keep failing")
    consecutive_failures = models.IntegerField(default=0, help_text="failed attempts since its last success")
    last_status_code = models.IntegerField(null=True, blank=True)
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.url


class Delivery(models.Model):
    """One alert to one receiver (a webhook or an email address), with every attempt."""

    class Channel(models.TextChoices):
        WEBHOOK = "webhook"
        EMAIL = "email"

    class State(models.TextChoices):
        PENDING = "pending"
        RETRYING = "retrying"
        DELIVERED = "delivered"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False,
                          help_text="X-Pinpoint-Delivery: the same on every attempt, for the receiver's idempotency")
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.WEBHOOK)
    webhook = models.ForeignKey(Webhook, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries")
    recipient = models.CharField(max_length=254, blank=True, help_text="the email address, for email")
    event = models.CharField(max_length=64)
    experiment = models.ForeignKey("experiments.Experiment", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="alert_deliveries")
    payload = models.JSONField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.IntegerField(default=0)
    status_code = models.IntegerField(null=True, blank=True, help_text="the last attempt's HTTP status")
    error = models.TextField(blank=True, help_text="the last attempt's failure")
    history = models.JSONField(default=list, help_text='[{"at", "status_code", "error", "ms"}] per attempt')
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="delivery_due_idx")]

    def __str__(self):
        return f"{self.event} to {self.webhook or self.recipient} ({self.state})"
