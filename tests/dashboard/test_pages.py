"""Every page and every state a PM can meet renders, and what a role may not do is not
offered (and refused if tried)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils.html import escape

from analysis.models import Metric
from analysis.services import run_analysis
from experiments import services
from experiments.models import Experiment
from tests.analysis.conftest import add_events, add_exposures, clear_events
from tests.conftest import as_user

pytestmark = pytest.mark.django_db


def _create(owner, key="ranker-test", **over):
    layer = services.create_layer(key=f"layer-{key}", name="Layer")
    fields = dict(key=key, name="Ranker <script>alert(1)</script>", hypothesis="Lifts CTR", variants=[
        {"key": "control", "weight": 50, "is_control": True, "recommender": {"name": "popularity", "params": {}}},
        {"key": "ranker", "weight": 50, "is_control": False, "recommender": {"name": "popularity", "params": {}}},
    ], primary_metric="closeup_ctr", guardrail_metrics=["hide_rate"])
    fields.update(over)
    return services.create_experiment(actor=owner, layer=layer, **fields)


def test_login_is_required_and_the_list_renders(client, experimenter):
    r = client.get("/")
    assert r.status_code == 302 and "/login/" in r["Location"]
    _create(experimenter)
    page = as_user(experimenter).get("/").content.decode()
    assert "ranker-test" in page and "not analysed yet" in page and "New experiment" in page
    # Names are escaped, never executed.
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


def test_the_form_applies_the_api_rules_with_the_api_messages(experimenter):
    services.create_layer(key="l1", name="L1")
    client = as_user(experimenter)
    form = {"key": "bad key!", "name": "", "layer": "l1", "traffic_percent": "150", "control": "0",
            "variant-0-key": "control", "variant-0-weight": "70", "variant-0-recommender": "popularity",
            "variant-1-key": "t", "variant-1-weight": "70", "variant-1-recommender": "nope",
            "primary_metric": "closeup_ctr", "minimum_detectable_effect": "0.02"}
    r = client.post("/experiments/new", form)
    assert r.status_code == 400
    page = r.content.decode()
    assert "The experiment was not created" in page
    api = as_user(experimenter).post("/api/v1/experiments", {
        "key": "bad key!", "name": "", "layer": "l1", "traffic_percent": 150, "variants": [
            {"key": "control", "weight": 70, "is_control": True, "recommender": {"name": "popularity"}},
            {"key": "t", "weight": 70, "recommender": {"name": "nope"}}]}, format="json").json()
    assert set(api) == {"key", "name", "traffic_percent"}
    for field in ("key", "name", "traffic_percent"):
        assert escape(api[field][0]) in page  # the API's message, word for word
    form.update({"key": "good", "name": "Good", "traffic_percent": "100", "variant-1-recommender": "popularity"})
    r = client.post("/experiments/new", form)
    page = r.content.decode()
    api = as_user(experimenter).post("/api/v1/experiments", {
        "key": "good", "name": "Good", "layer": "l1", "variants": [
            {"key": "control", "weight": 70, "is_control": True, "recommender": {"name": "popularity"}},
            {"key": "t", "weight": 70, "recommender": {"name": "popularity"}}]}, format="json").json()
    for messages in api.values():
        assert escape(messages[0]) in page  # the weights rule, word for word
    form.update({"variant-0-weight": "50", "variant-1-weight": "50"})
    r = client.post("/experiments/new", form)
    assert r.status_code == 302 and Experiment.objects.get(key="good").owner == experimenter


def test_lifecycle_asks_for_confirmation_then_runs(experimenter):
    e = _create(experimenter)
    client = as_user(experimenter)
    page = client.get(f"/experiments/{e.key}/start").content.decode()
    assert "begin to be assigned" in page and "Yes, start it" in page
    assert Experiment.objects.get(pk=e.pk).status == "draft"  # a GET changes nothing
    client.post(f"/experiments/{e.key}/start")
    assert Experiment.objects.get(pk=e.pk).status == "running"
    # A ramp asks first, saying from what to what; down is the dangerous way.
    page = client.post(f"/experiments/{e.key}/update", {"traffic_percent": "50"}).content.decode()
    assert "from 100% to 50%?" in page and "about 50% of the users in the experiment now stop" in page
    assert Experiment.objects.get(pk=e.pk).traffic_percent == 100
    client.post(f"/experiments/{e.key}/update", {"traffic_percent": "50", "confirm": "yes"})
    assert Experiment.objects.get(pk=e.pk).traffic_percent == 50
    audit = client.get(f"/experiments/{e.key}/").content.decode()
    assert "traffic_percent: 100 → 50" in audit
    r = client.post(f"/experiments/{e.key}/update", {"traffic_percent": "500"}, follow=True)
    assert "less than or equal to 100" in r.content.decode()
    client.post(f"/experiments/{e.key}/update", {"name": "Renamed", "hypothesis": "H2", "description": "D"})
    e.refresh_from_db()
    assert (e.name, e.hypothesis, e.description) == ("Renamed", "H2", "D")
    r = client.post(f"/experiments/{e.key}/update", {"name": ""}, follow=True)
    assert "may not be blank" in r.content.decode() and Experiment.objects.get(pk=e.pk).name == "Renamed"


def test_a_viewer_reads_but_is_offered_no_change_and_refused_if_tried(experimenter, viewer):
    e = _create(experimenter)
    client = as_user(viewer)
    assert "New experiment" not in client.get("/").content.decode()
    detail = client.get(f"/experiments/{e.key}/").content.decode()
    assert "Start…" not in detail and "Ramp" not in detail
    assert client.get("/experiments/new").status_code == 403
    assert client.post(f"/experiments/{e.key}/start").status_code == 403
    assert client.post(f"/experiments/{e.key}/update", {"traffic_percent": "10"}).status_code == 403
    assert client.post(f"/experiments/{e.key}/analyze").status_code == 403
    results = client.get(f"/experiments/{e.key}/results").content.decode()
    assert "Re-run analysis" not in results


def test_an_experimenter_cannot_run_someone_elses_experiment(experimenter, admin_user):
    e = _create(admin_user)
    assert as_user(experimenter).post(f"/experiments/{e.key}/start").status_code == 403
    assert Experiment.objects.get(pk=e.pk).status == "draft"


def test_results_page_renders_every_state(experimenter):
    now = datetime.now(UTC)
    e = _create(experimenter)
    services.transition(e, "start", actor=experimenter)
    client = as_user(experimenter)
    url = f"/experiments/{e.key}/results"
    assert "No results yet" in client.get(url).content.decode()

    run_analysis(e)  # no data yet
    assert "No exposed users yet" in client.get(url).content.decode()

    control, ranker = list(e.variants.all())
    add_exposures("default", e, [(control, f"c{i}", now - timedelta(hours=2), {}, False) for i in range(40)])
    run_analysis(e)  # a single variant's data
    page = client.get(url).content.decode()
    assert "Only one variant has users" in page

    add_exposures("default", e, [(ranker, f"r{i}", now - timedelta(hours=2), {}, False) for i in range(10)])
    try:
        add_events("default", [(f"c{i}", "impression", now - timedelta(hours=1)) for i in range(40)]
                   + [(f"r{i}", "impression", now - timedelta(hours=1)) for i in range(10)])
        run_analysis(e)  # 40 against 10 of a 50/50 split: an SRM
        page = client.get(url + "?mode=sequential&cuped=1").content.decode()
        assert "Sample ratio mismatch: do not trust these results yet" in page
        assert 'id="forest"' in page and "forest-data" in page and "vendor/plotly.min.js" in page

        Metric.objects.create(key="broken", name="Broken", kind="mean", numerator_types=["purchase"])
        client.post(f"/experiments/{e.key}/analyze")
        page = client.get(url).content.decode()
        assert "The last analysis failed" in page and "purchase" in page
        assert "numbers below are from the last analysis that succeeded" in page
    finally:
        clear_events("default")


def test_recommenders_page_lists_the_registry(viewer):
    page = as_user(viewer).get("/recommenders").content.decode()
    for name in ("popularity", "board_cooccurrence", "pixie"):
        assert name in page
    assert "Offline evaluation" in page


def _report(experiment, status, minutes, srm_flagged=False):
    from analysis.models import AnalysisReport

    at = datetime(2026, 11, 1, 12, tzinfo=UTC) + timedelta(minutes=minutes)
    results = {"srm": {"p_value": 0.0001 if srm_flagged else 0.5, "flagged": srm_flagged}, "metrics": []}
    return AnalysisReport.objects.create(
        experiment=experiment, status=status, started_at=at, computed_at=at, as_of=at,
        results=results if status == "succeeded" else None, error="" if status == "succeeded" else "boom")


def test_the_list_reads_every_experiments_latest_report_in_a_fixed_number_of_queries(experimenter):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from analysis import selectors

    client = as_user(experimenter)
    none = _create(experimenter, key="no-report")
    healthy = _create(experimenter, key="healthy")
    _report(healthy, "failed", 0)
    _report(healthy, "succeeded", 10)
    broken = _create(experimenter, key="broken-since")
    _report(broken, "succeeded", 0, srm_flagged=True)
    _report(broken, "failed", 10)
    _report(broken, "failed", 20)
    experiments = [none, healthy, broken]
    # The batch read gives what the one-experiment selectors give.
    batch = selectors.latest_reports(e.pk for e in experiments)
    assert batch == {e.pk: (selectors.latest_report(e), selectors.latest_failure_since_success(e))
                     for e in experiments}
    assert batch[broken.pk][1].computed_at.minute == 20 and batch[healthy.pk][1] is None

    with CaptureQueriesContext(connection) as few:
        page = client.get("/").content.decode()
    assert "sample ratio mismatch" in page and "healthy" in page
    for i in range(12):
        e = _create(experimenter, key=f"more-{i}")
        _report(e, "succeeded", i)
        _report(e, "failed", i + 1)
    with CaptureQueriesContext(connection) as many:
        assert client.get("/").status_code == 200
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]


def test_refusals_and_unknown_pages_are_pinpoint_pages_with_a_way_back(viewer, experimenter):
    client = as_user(viewer)
    refused = client.get("/experiments/new")
    page = refused.content.decode()
    assert refused.status_code == 403
    assert "Your role cannot create experiments." in page and "(viewer)" in page
    assert "Back to the experiments" in page and "dashboard.css" in page
    missing = client.get("/experiments/no-such-experiment/")
    page = missing.content.decode()
    assert missing.status_code == 404
    assert "/experiments/no-such-experiment" in page and "Back to the experiments" in page
    assert "URLconf" not in page  # never Django's debug page
    # The API keeps answering JSON.
    assert client.get("/api/v1/nothing-here").json()["detail"].startswith("No API endpoint")


def test_the_error_page_renders_without_a_request_context():
    from django.test import RequestFactory

    from core.views import server_error

    response = server_error(RequestFactory().get("/experiments/x"))
    assert response.status_code == 500
    assert b"Something went wrong" in response.content and b"Back to Pinpoint" in response.content


def test_detail_shows_the_timeline_and_results_choose_the_phase(experimenter):
    e = _create(experimenter, key="phased-page")
    client = as_user(experimenter)
    assert "No phases yet" in client.get(f"/experiments/{e.key}/").content.decode()
    services.transition(e, "start", actor=experimenter)
    services.update_experiment(e, actor=experimenter, changes={"traffic_percent": 30})
    services.update_experiment(e, actor=experimenter, changes={"weights": {"control": 80, "ranker": 20}})
    page = client.get(f"/experiments/{e.key}/").content.decode()
    assert "Phases and ramps" in page and "100% → 30%" in page
    assert page.index("Phase 1</a>") < page.index('neutral">ramp') < page.index("Phase 2</a>")
    assert "control 80% / ranker 20%" in page

    run_analysis(e)  # the current phase
    results = client.get(f"/experiments/{e.key}/results").content.decode()
    assert "Phase 2: users first exposed from" in results and "<strong>2</strong> (current)" in results
    assert '<a href="?phase=1">1</a>' in results
    assert "control 80% / ranker 20%" in results
    past = client.get(f"/experiments/{e.key}/results?phase=1").content.decode()
    assert "Phase 1: users first exposed from" in past and "No results yet" in past
    assert 'name="phase" value="1"' in past  # re-run analyses the phase shown
    client.post(f"/experiments/{e.key}/analyze", {"phase": "1"})
    assert "No results yet" not in client.get(f"/experiments/{e.key}/results?phase=1").content.decode()
    bad = client.get(f"/experiments/{e.key}/results?phase=9", follow=True)
    assert bad.status_code == 200 and "no phase 9" in bad.content.decode()
