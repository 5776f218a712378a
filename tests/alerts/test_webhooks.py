"""Webhooks and email alerts: registering (with the refusals), what each event sends,
retries with backoff, failing receivers, and pausing on a regressed guardrail."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from alerts import services
from alerts.models import Delivery, Webhook
from alerts.signing import body_bytes, verify
from analysis.models import AnalysisReport
from experiments import services as experiment_services
from experiments.models import AuditLog, Experiment
from tests.alerts.receiver import receiving
from tests.conftest import as_user
from tests.experiments.conftest import experiment_body

SECRET = "s3cret-for-the-tests-only"


@pytest.fixture
def sent(monkeypatch):
    """Deliveries published, as ids; the tests run each attempt themselves."""
    ids = []
    monkeypatch.setattr("alerts.services.send", lambda delivery_id: ids.append(str(delivery_id)))
    return ids


@pytest.fixture
def draft(layer, experimenter):
    experimenter.email = "owner@example.com"
    experimenter.save()
    body = experiment_body()
    body.pop("layer"), body.pop("surface")
    return experiment_services.create_experiment(actor=experimenter, layer=layer, **body)


def test_registering_refuses_bad_input_with_field_messages(db, experimenter, viewer, settings):
    client = as_user(experimenter)
    bad = client.post("/api/v1/webhooks", {"url": "ftp://hooks.example.com/x", "events": ["experiment.started"],
                                           "secret": "short"}, format="json")
    assert bad.status_code == 400
    errors = bad.json()
    assert "http:// or https://" in errors["url"][0]
    assert "experiment.started" in errors["events"][0]
    assert "16 characters" in errors["secret"][0]
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    private = client.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/x", "events": ["srm.flagged"],
                                               "secret": SECRET}, format="json")
    assert private.status_code == 400 and "loopback" in private.json()["url"][0]
    assert client.post("/api/v1/webhooks", ["not", "an", "object"], format="json").status_code == 400
    assert as_user(viewer).post("/api/v1/webhooks", {"url": "https://example.com", "events": ["srm.flagged"],
                                                     "secret": SECRET}, format="json").status_code == 403
    assert not Webhook.objects.exists()


def test_a_registered_webhook_never_shows_its_secret(db, experimenter):
    made = as_user(experimenter).post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook",
                                                           "events": ["experiment.lifecycle"], "secret": SECRET},
                                      format="json")
    assert made.status_code == 201
    assert "secret" not in made.json() and made.json()["owner"] == experimenter.username
    assert SECRET not in as_user(experimenter).get("/api/v1/webhooks").content.decode()


def test_a_lifecycle_change_is_delivered_signed_and_retried_after_a_500(draft, experimenter, sent,
                                                                        django_capture_on_commit_callbacks):
    with receiving(SECRET, script=[500]) as (receiver, url):
        webhook = services.register(url=url, events=["experiment.lifecycle"], secret=SECRET)
        services.register(url=url, events=["srm.flagged"], secret=SECRET)  # not subscribed: nothing
        with django_capture_on_commit_callbacks(execute=True):
            experiment_services.transition(draft, "start", actor=experimenter)
        (delivery_id,) = [d for d in sent if Delivery.objects.get(pk=d).channel == "webhook"]
        first = services.attempt(delivery_id)
        assert first.state == "retrying" and first.status_code == 500
        assert first.next_attempt_at - timezone.now() <= timedelta(seconds=2)
        assert services.attempt(delivery_id).state == "retrying"  # not due yet: an early copy does nothing
        Delivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now())
        second = services.attempt(delivery_id)
    assert second.state == "delivered" and second.attempts == 2
    assert [h["status_code"] for h in second.history] == [500, 200]
    assert len(receiver.requests) == 2
    for request in receiver.requests:
        assert request["signed"]
        assert request["headers"]["X-Pinpoint-Delivery"] == delivery_id == request["payload"]["id"]
        assert request["headers"]["X-Pinpoint-Event"] == "experiment.lifecycle"
    payload = receiver.requests[0]["payload"]
    assert payload["experiment"]["key"] == draft.key and payload["data"]["action"] == "start"
    assert payload["link"].endswith(f"/experiments/{draft.key}/")
    assert payload["summary"] == f"{draft.name} was started by {experimenter.username}."
    webhook.refresh_from_db()
    assert webhook.last_status_code == 200 and webhook.consecutive_failures == 0 and not webhook.failing
    # The owner gets it by email too.
    email = Delivery.objects.get(channel="email")
    assert services.attempt(email.pk).state == "delivered"
    assert mail.outbox[-1].to == ["owner@example.com"] and draft.key in mail.outbox[-1].body


def test_a_receiver_that_keeps_failing_is_given_up_on_and_marked_failing(draft, experimenter, sent, settings,
                                                                        django_capture_on_commit_callbacks):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    settings.WEBHOOK_FAILING_AFTER = 3
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    with receiving(SECRET, script=[503, 502], delay=0.0) as (receiver, url):
        webhook = services.register(url=url, events=["experiment.lifecycle"], secret=SECRET)
        receiver.delay = 0.0
        with django_capture_on_commit_callbacks(execute=True):
            experiment_services.transition(draft, "start", actor=experimenter)
        delivery_id = next(d for d in sent if Delivery.objects.get(pk=d).channel == "webhook")
        states = []
        for answer_slowly in (False, False, True):
            receiver.delay = 1.0 if answer_slowly else 0.0  # the third times out
            Delivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now())
            states.append(services.attempt(delivery_id).state)
    assert states == ["retrying", "retrying", "failed"]
    delivery = Delivery.objects.get(pk=delivery_id)
    assert [h["status_code"] for h in delivery.history] == [503, 502, None]
    assert "Timeout" in delivery.history[-1]["error"]
    webhook.refresh_from_db()
    assert webhook.failing and webhook.consecutive_failures == 3
    page = as_user(experimenter).get("/alerts").content.decode()
    assert "failing" in page and "503" in page


def test_backoff_doubles_and_the_sweep_sends_what_is_due(db, settings, sent):
    assert [services.backoff_seconds(n) for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert services.backoff_seconds(30) == 3600
    due = Delivery.objects.create(event="srm.flagged", payload={}, state="retrying",
                                  next_attempt_at=timezone.now() - timedelta(seconds=1))
    Delivery.objects.create(event="srm.flagged", payload={}, state="retrying",
                            next_attempt_at=timezone.now() + timedelta(minutes=5))
    lost = Delivery.objects.create(event="srm.flagged", payload={}, state="pending")
    Delivery.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(minutes=3))
    assert set(services.sweep()) == {str(due.pk), str(lost.pk)}


def _report(experiment, doc, minutes_ago):
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return AnalysisReport.objects.create(experiment=experiment, status="succeeded", started_at=at, computed_at=at,
                                         as_of=at, phase=1, results=doc)


def _doc(regressed: bool):
    return {"srm": {"flagged": False}, "metrics": [
        {"metric": "hide_rate", "role": "guardrail", "comparisons": [
            {"variant": "ranker", "relative_lift": 0.08, "ci_low": 0.03, "ci_high": 0.13,
             "guardrail": {"verdict": "regressed" if regressed else "within_margin", "margin": 0.02}}]}]}


def test_a_regressed_guardrail_alerts_once_and_pauses_when_asked(draft, experimenter, sent,
                                                                 django_capture_on_commit_callbacks):
    from alerts.receivers import on_analysis

    webhook = services.register(url="http://127.0.0.1:9/x", events=["guardrail.regressed", "experiment.lifecycle"],
                                secret=SECRET)
    experiment_services.transition(draft, "start", actor=experimenter)
    experiment_services.update_experiment(draft, actor=experimenter, changes={"pause_on_guardrail_regression": True})
    _report(draft, _doc(regressed=False), 120)
    latest = _report(draft, _doc(regressed=True), 60)
    with django_capture_on_commit_callbacks(execute=True):
        on_analysis(AnalysisReport, report_id=latest.pk)
    alerts = list(Delivery.objects.filter(webhook=webhook).order_by("created_at"))
    assert [d.event for d in alerts] == ["guardrail.regressed", "experiment.lifecycle"]
    assert alerts[0].payload["summary"] == "Guardrail hide_rate regressed in ranker: +8.0% [+3.0%, +13.0%]."
    paused = alerts[1].payload
    assert paused["data"]["action"] == "pause" and paused["data"]["actor"] is None
    assert paused["summary"].startswith(f"{draft.name} was paused by Pinpoint: paused automatically: Guardrail")
    assert Experiment.objects.get(pk=draft.pk).status == "paused"
    assert AuditLog.objects.filter(experiment=draft, action="pause", actor=None,
                                   note__startswith="paused automatically").exists()
    # The next report with the guardrail still regressed raises nothing new.
    again = _report(draft, _doc(regressed=True), 1)
    on_analysis(AnalysisReport, report_id=again.pk)
    assert Delivery.objects.filter(webhook=webhook, event="guardrail.regressed").count() == 1


def test_a_failed_analysis_alerts(draft, sent):
    webhook = services.register(url="http://127.0.0.1:9/x", events=["analysis.failed"], secret=SECRET)
    at = datetime.now(UTC)
    report = AnalysisReport.objects.create(experiment=draft, status="failed", started_at=at, computed_at=at,
                                           as_of=at, error="OperationalError: the events table is locked\ntrace")
    from alerts.receivers import on_analysis

    on_analysis(AnalysisReport, report_id=report.pk)
    delivery = Delivery.objects.get(webhook=webhook)
    assert delivery.payload["summary"] == (f"The analysis of {draft.name} failed: OperationalError: the events "
                                           "table is locked")
    assert verify(SECRET, body_bytes(delivery.payload),
                  services.signing.signature(SECRET, body_bytes(delivery.payload)))
