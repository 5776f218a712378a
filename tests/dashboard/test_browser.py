"""The dashboard in a real browser (Debian's chromium through Playwright): log in,
create an experiment, start it, feed it traffic through the client API and a real
Celery worker, run the analysis, read the table and the charts; a viewer who cannot
edit. Screenshots of each page go to var/test-artifacts/dashboard/."""

import json
import os
import random
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytest.importorskip("playwright")

from django.conf import settings  # noqa: E402

from accounts.services import create_api_key  # noqa: E402
from experiments import services  # noqa: E402
from experiments.models import Exposure  # noqa: E402
from tests import processes  # noqa: E402
from tests.factories import UserFactory  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(settings.VAR_DIR) / "test-artifacts" / "dashboard"
PASSWORD = "pw-for-tests"

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (apt-get install "
                                                            "chromium; .ci/run does it)"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True, scope="module")
def _sync_orm_beside_playwright():
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls
    # are still synchronous ones. Only for these tests: never in a deployment (and never
    # leaked into the environment of other tests' subprocesses).
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture
def page():
    """A page of Debian's chromium. Playwright is started and stopped around each test
    (not with pytest-playwright's session-wide fixtures): its sync API keeps an event
    loop in this thread while it runs, and Django refuses ORM calls from a thread with a
    running loop, which would fail every database test after this one."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


@pytest.fixture
def requests_seen(page):
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    return seen


def shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page, base, username):
    page.goto(f"{base}/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/")


def post_json(url, key, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Api-Key {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def feed_traffic(base, key, experiment_key, users=500):
    """Assign users through the API (enough for the minimum data before a verdict: about
    250 clicks in control), then send impressions and clicks for each: the
    treatment's users click more often."""
    rng = random.Random(7)
    ids = [f"browser-user-{i}" for i in range(users)]
    status, body = post_json(f"{base}/api/v1/assignments/batch", key,
                             {"surface": "closeup", "users": [{"user_id": u, "attributes": {}} for u in ids]})
    assert status == 200
    variant = {r["user_id"]: next(a["variant"] for a in r["assignments"] if a["experiment"] == experiment_key)
               for r in body["results"]}
    events = []
    # After the exposures (only events from a user's first exposure on count), and
    # before the analysis that follows.
    after = datetime.now(UTC)
    for u in ids:
        p = 0.25 if variant[u] == "treatment" else 0.10
        for i in range(10):
            t = (after + timedelta(seconds=rng.uniform(0, 1))).isoformat()
            events.append({"event_id": str(uuid.uuid4()), "user_id": u, "type": "impression", "pin_id": i,
                           "position": i, "timestamp": t})
            if rng.random() < p:
                events.append({"event_id": str(uuid.uuid4()), "user_id": u, "type": "click", "pin_id": i,
                               "position": i, "timestamp": t})
    for start in range(0, len(events), 1000):
        status, accepted = post_json(f"{base}/api/v1/events", key, {"events": events[start:start + 1000]})
        assert status == 202 and not accepted["rejected"]
    return ids, len(events)


def stored_events() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM experiments_event")
        return cursor.fetchone()[0]


def test_a_pm_creates_starts_and_reads_an_experiment(django_db_setup, celery_worker_process, live_server, page,
                                                    requests_seen):
    # The test database and the worker come up before Playwright starts its event loop.
    base = live_server.url
    UserFactory(username="pm", role="experimenter", password=PASSWORD)
    UserFactory(username="reader", role="viewer", password=PASSWORD)
    services.create_layer(key="closeup-main", name="Closeup main")
    key = create_api_key("browser-test").key

    log_in(page, base, "pm")
    shot(page, "1-experiment-list-empty")
    page.get_by_role("link", name="New experiment").click()
    page.locator("#id_key").fill("browser-ranker")
    page.locator("#id_name").fill("Browser ranker test")
    page.locator("#id_hypothesis").fill("The treatment's ranker lifts closeup CTR.")
    page.locator("#variant-1-key").fill("treatment")
    shot(page, "2-create-form")
    page.get_by_role("button", name="Create experiment").click()
    page.wait_for_url(f"{base}/experiments/browser-ranker/")
    assert page.get_by_role("heading", name="Browser ranker test").is_visible()

    page.get_by_role("link", name="Start…").click()
    assert "begin to be assigned" in page.content()
    page.get_by_role("button", name="Yes, start it").click()
    page.wait_for_url(f"{base}/experiments/browser-ranker/")
    assert "running" in page.locator("main").inner_text()
    shot(page, "3-experiment-detail")

    ids, n_events = feed_traffic(base, key, "browser-ranker")
    processes.wait_until(lambda: Exposure.objects.filter(experiment__key="browser-ranker").count() == len(ids)
                         and stored_events() == n_events, timeout=90, what="exposures and events to be stored")

    time.sleep(1.5)  # the analysis counts events up to its own start time
    page.goto(f"{base}/experiments/browser-ranker/results")
    assert "No results yet" in page.content()
    page.get_by_role("button", name="Re-run analysis").click()
    page.wait_for_url(f"{base}/experiments/browser-ranker/results")
    table = page.locator("table").first
    assert "treatment" in table.inner_text()
    # The users are split between the two variants (the Users column, not the whole table,
    # whose four-decimal means can read "0.2300").
    users = [int(cell.replace(",", "")) for cell in table.locator("tbody tr td:nth-of-type(1)").all_inner_texts()]
    assert len(users) == 2 and sum(users) == len(ids) and all(0 < n < len(ids) for n in users), users
    assert "significantly better" in table.inner_text()
    # The charts are drawn: plotly's SVG is there, with marks in it.
    page.wait_for_selector("#forest svg.main-svg")
    page.wait_for_selector("#cumulative svg.main-svg")
    assert page.locator("#forest .scatterlayer .point").count() >= 1
    assert "closeup_ctr · treatment" in page.locator("#forest svg.main-svg").first.inner_html()
    assert page.locator("#cumulative .scatterlayer .trace").count() >= 1
    # Day 0: the date axis shows days, not one day zoomed into sub-second ticks.
    ticks = page.locator("#cumulative .xtick text").evaluate_all("els => els.map(e => e.textContent || '')")
    with_times = [label for label in ticks if ":" in label]
    assert ticks and not with_times, ticks
    shot(page, "4-results")

    page.get_by_label("Test").select_option("sequential")
    page.get_by_label("CUPED (less noise from pre-experiment behaviour)").check()
    page.get_by_role("button", name="Apply").click()
    page.wait_for_selector("#forest svg.main-svg")
    assert "always-valid confidence sequence" in page.content()
    shot(page, "5-results-sequential-cuped")

    page.goto(f"{base}/")
    assert "browser-ranker" in page.content() and "significantly better" in page.content()
    shot(page, "6-experiment-list")
    page.goto(f"{base}/recommenders")
    shot(page, "7-recommenders")

    # A viewer reads but is offered nothing to change, and is refused if they try.
    page.get_by_role("button", name="Log out").click()
    log_in(page, base, "reader")
    page.goto(f"{base}/experiments/browser-ranker/")
    assert page.get_by_role("link", name="Pause…").count() == 0
    assert page.get_by_role("button", name="Ramp").count() == 0
    page.goto(f"{base}/experiments/browser-ranker/results")
    assert page.get_by_role("button", name="Re-run analysis").count() == 0
    response = page.goto(f"{base}/experiments/new")
    assert response.status == 403
    assert "Your role cannot create experiments." in page.content()
    page.get_by_role("link", name="Back to the experiments").click()
    page.wait_for_url(f"{base}/")
    page.go_back()
    shot(page, "8-viewer-refused")

    # On a phone (390 px) the list and the results keep the screen's width: a wide table
    # scrolls inside itself.
    page.set_viewport_size({"width": 390, "height": 844})
    for path, name in (("/", "10-list-390px"), ("/experiments/browser-ranker/results", "11-results-390px")):
        page.goto(f"{base}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
        shot(page, name)

    # Nothing the pages asked for left this machine.
    hosts = {urlsplit(u).hostname for u in requests_seen if not u.startswith(("data:", "blob:"))}
    assert hosts <= {"localhost", "127.0.0.1"}, hosts


HOSTILE = ('<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
           '"><svg onload="window.__pwned = 3"> \'; DROP TABLE experiments_experiment; --')


def test_html_and_sql_in_every_field_are_shown_as_text_and_never_run(django_db_setup, live_server, page):
    """Names, hypotheses, layer names and metric names carrying markup and SQL: every
    page shows them as text in a real browser, and no script of theirs runs."""
    from analysis.models import Metric

    base = live_server.url
    pm = UserFactory(username="pm-hostile", role="experimenter", password=PASSWORD)
    layer = services.create_layer(key="hostile-layer", name=HOSTILE)
    Metric.objects.create(key="hostile_metric", name=HOSTILE, description=HOSTILE, kind="mean",
                          numerator_types=["click"])
    experiment = services.create_experiment(
        actor=pm, layer=layer, key="hostile-exp", name=HOSTILE, hypothesis=HOSTILE, description=HOSTILE,
        variants=[{"key": "control", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}},
                  {"key": "treatment", "weight": 50, "recommender": {"name": "popularity"}}],
        guardrail_metrics=["hostile_metric"])
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in(page, base, "pm-hostile")
    for path in ("/", f"/experiments/{experiment.key}/", f"/experiments/{experiment.key}/results",
                 "/experiments/new/"):
        page.goto(f"{base}{path}")
        page.wait_for_load_state("load")
        assert page.evaluate("window.__pwned") is None, path
        if path != "/experiments/new/":
            assert "<script>window.__pwned = 1</script>" in page.inner_text("body"), path  # shown, as text
    shot(page, "9-hostile-text")
    assert not dialogs
    from experiments.models import Experiment

    assert Experiment.objects.get(key="hostile-exp").name == HOSTILE  # stored as it was sent
