"""Alerts: registering webhooks, turning what happened into deliveries, and delivering
them, one attempt at a time, with retries and exponential backoff on the worker."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from alerts import signing, targets
from alerts.conditions import EVENTS
from alerts.models import Delivery, Webhook

logger = logging.getLogger(__name__)

MIN_SECRET_LENGTH = 16
MAX_EVENTS_PER_SEND = 50
# Celery holds a retry due within this many seconds itself; later ones wait for the
# sweep, so no message sits unacknowledged past Redis's visibility timeout.
CELERY_RETRY_WITHIN_SECONDS = 20


# --- Registering -----------------------------------------------------------------


def webhook_errors(*, url=None, events=None, secret=None, partial: bool = False) -> dict:
    errors: dict[str, list[str]] = {}
    if url is not None or not partial:
        try:
            targets.resolve(url, settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS)
        except targets.TargetRefused as exc:
            errors["url"] = [str(exc)]
    if events is not None or not partial:
        if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
            errors["events"] = [f"A non-empty list of events, from: {', '.join(EVENTS)}."]
        else:
            unknown = sorted(set(events) - set(EVENTS))
            if unknown:
                errors["events"] = [f"Unknown events: {', '.join(unknown)}; known: {', '.join(EVENTS)}."]
    if secret is not None or not partial:
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
            errors["secret"] = [f"At least {MIN_SECRET_LENGTH} characters: the receiver checks each body's "
                                "HMAC-SHA256 with it."]
        elif len(secret) > 200:
            errors["secret"] = ["At most 200 characters."]
    return errors


def register(*, url: str, events: list[str], secret: str, description: str = "", owner=None) -> Webhook:
    errors = webhook_errors(url=url, events=events, secret=secret)
    if errors:
        raise ValidationError(errors)
    return Webhook.objects.create(url=url.strip(), events=list(dict.fromkeys(events)), secret=secret,
                                  description=description, owner=owner if getattr(owner, "pk", None) else None)


def update_webhook(webhook: Webhook, changes: dict) -> Webhook:
    errors = webhook_errors(**{k: changes[k] for k in ("url", "events", "secret") if k in changes}, partial=True)
    if errors:
        raise ValidationError(errors)
    for field in ("url", "events", "secret", "description", "is_active"):
        if field in changes:
            setattr(webhook, field, changes[field])
    if changes.get("is_active") or "url" in changes:
        webhook.failing, webhook.consecutive_failures = False, 0  # a fixed receiver starts clean
    webhook.save()
    return webhook


# --- Raising ---------------------------------------------------------------------


def experiment_link(experiment) -> str:
    return settings.PUBLIC_URL + reverse("dashboard:experiment-detail", kwargs={"key": experiment.key})


def notify(event: str, experiment, summary: str, data: dict) -> list[Delivery]:
    """One delivery per webhook subscribed to `event`, and one email to the experiment's
    owner; sent once the caller's transaction commits."""
    base = {
        "event": event, "summary": summary, "occurred_at": timezone.now().isoformat(),
        "experiment": {"key": experiment.key, "name": experiment.name, "status": experiment.status,
                       "design": experiment.design, "surface": experiment.surface},
        "link": experiment_link(experiment), "data": data,
    }
    deliveries = []
    for webhook in Webhook.objects.filter(is_active=True):
        if event in webhook.events:
            delivery = Delivery(channel=Delivery.Channel.WEBHOOK, webhook=webhook, event=event, experiment=experiment)
            delivery.payload = {"id": str(delivery.id), **base}
            deliveries.append(delivery)
    owner = experiment.owner
    if settings.ALERT_EMAILS and owner is not None and owner.email:
        delivery = Delivery(channel=Delivery.Channel.EMAIL, recipient=owner.email, event=event, experiment=experiment)
        delivery.payload = {"id": str(delivery.id), **base}
        deliveries.append(delivery)
    Delivery.objects.bulk_create(deliveries)
    ids = [d.pk for d in deliveries]
    if ids:
        transaction.on_commit(lambda: [send(i) for i in ids])
    return deliveries


def send(delivery_id) -> None:
    """Publish the delivery's task by name (no import of tasks here: tasks import us)."""
    from celery import current_app

    current_app.send_task("alerts.tasks.deliver", args=[str(delivery_id)])


# --- Delivering ------------------------------------------------------------------


def backoff_seconds(attempts: int) -> float:
    """The wait after the `attempts`-th failed attempt: 2 s, 4 s, 8 s, … at most an hour."""
    return min(settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempts - 1), 3600.0)


def _post(webhook: Webhook, body: bytes, delivery: Delivery) -> int:
    target = targets.resolve(webhook.url, settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS)
    timeout = urllib3.Timeout(connect=settings.WEBHOOK_TIMEOUT_SECONDS, read=settings.WEBHOOK_TIMEOUT_SECONDS)
    # Connect to the address just checked (not a second DNS answer); TLS still checks the name.
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(target.address, target.port, timeout=timeout, retries=False,
                                           server_hostname=target.host, assert_hostname=target.host)
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout, retries=False)
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    headers = {"Host": host_header, "Content-Type": "application/json", "User-Agent": "Pinpoint-Webhooks/1",
               "X-Pinpoint-Event": delivery.event, "X-Pinpoint-Delivery": str(delivery.id),
               "X-Pinpoint-Signature": signing.signature(webhook.secret, body)}
    try:
        response = pool.urlopen("POST", target.path, body=body, headers=headers, redirect=False, retries=False,
                                preload_content=True)
    finally:
        pool.close()
    return response.status


def attempt(delivery_id) -> Delivery | None:
    """One attempt; idempotent for a delivery already delivered or given up. Schedules
    the next attempt after a failure."""
    with transaction.atomic():
        delivery = (Delivery.objects.select_for_update(skip_locked=True, of=("self",)).select_related("webhook")
                    .filter(pk=delivery_id).first())
        if delivery is None or delivery.state in (Delivery.State.DELIVERED, Delivery.State.FAILED):
            return delivery
        if (delivery.state == Delivery.State.RETRYING and delivery.next_attempt_at
                and delivery.next_attempt_at > timezone.now() + timedelta(seconds=1)):
            return delivery  # a copy sent early (the sweep and a held retry both fired): not due yet
        started = time.perf_counter()
        status, error = None, ""
        try:
            if delivery.channel == Delivery.Channel.EMAIL:
                _email(delivery)
            else:
                status = _post(delivery.webhook, signing.body_bytes(delivery.payload), delivery)
                if not 200 <= status < 300:
                    error = f"the receiver answered {status}" + (" (redirects are not followed)"
                                                                  if 300 <= status < 400 else "")
        except targets.TargetRefused as exc:
            error = str(exc)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        now = timezone.now()
        delivery.attempts += 1
        delivery.status_code, delivery.error = status, error
        delivery.history = [*delivery.history, {"at": now.isoformat(), "status_code": status, "error": error,
                                                "ms": round((time.perf_counter() - started) * 1000)}]
        if not error:
            delivery.state, delivery.delivered_at, delivery.next_attempt_at = Delivery.State.DELIVERED, now, None
        elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            delivery.state, delivery.next_attempt_at = Delivery.State.FAILED, None
        else:
            delivery.state = Delivery.State.RETRYING
            delivery.next_attempt_at = now + timedelta(seconds=backoff_seconds(delivery.attempts))
        delivery.save()
        if delivery.webhook_id:
            _record_on_webhook(delivery.webhook, ok=not error, status=status, at=now)
    if delivery.state == Delivery.State.RETRYING:
        wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
        if wait <= CELERY_RETRY_WITHIN_SECONDS:
            from celery import current_app

            current_app.send_task("alerts.tasks.deliver", args=[str(delivery.pk)], countdown=max(wait, 0))
    return delivery


def _record_on_webhook(webhook: Webhook, ok: bool, status, at) -> None:
    webhook.last_status_code, webhook.last_delivery_at = status, at
    webhook.consecutive_failures = 0 if ok else webhook.consecutive_failures + 1
    webhook.failing = webhook.consecutive_failures >= settings.WEBHOOK_FAILING_AFTER
    webhook.save(update_fields=["last_status_code", "last_delivery_at", "consecutive_failures", "failing"])


def _email(delivery: Delivery) -> None:
    p = delivery.payload
    subject = f"[Pinpoint] {p['experiment']['name']}: {p['event']}"
    body = f"{p['summary']}\n\nExperiment: {p['experiment']['key']} ({p['experiment']['status']})\n{p['link']}\n"
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [delivery.recipient], fail_silently=False)


def sweep() -> list[str]:
    """Send the deliveries whose next attempt is due (waits too long for Celery to hold),
    and those never sent (their message lost with a broker restart)."""
    now = timezone.now()
    due = Delivery.objects.filter(state=Delivery.State.RETRYING, next_attempt_at__lte=now)
    lost = Delivery.objects.filter(state=Delivery.State.PENDING, created_at__lte=now - timedelta(minutes=2))
    ids = [str(i) for i in (due | lost).order_by("created_at").values_list("id", flat=True)[:500]]
    for delivery_id in ids:
        send(delivery_id)
    return ids
