"""An interleaving experiment's results as a PM reads them: the verdict and the
sentence in words from the same counts as the API's block, the table and Δ over time
drawn, in a real browser; and its CSV."""

import csv
import io

import pytest

pytest.importorskip("playwright")

from tests.conftest import as_user  # noqa: E402
from tests.dashboard.conftest import interleaved_experiment  # noqa: E402
from tests.dashboard.test_browser import (  # noqa: E402, F401  (fixtures and helpers)
    PASSWORD,
    _sync_orm_beside_playwright,
    log_in,
    page,
    pytestmark,
    shot,
)
from tests.factories import UserFactory  # noqa: E402


def test_the_better_ranker_is_named_in_words_that_match_the_counts(page, live_server):  # noqa: F811
    base = live_server.url
    pm = UserFactory(username="pm-interleaving", role="experimenter", password=PASSWORD)
    interleaved_experiment(pm, "pop-vs-ranker", click={"popularity": 0.05, "ranker": 0.12})
    block = as_user(pm).get("/api/v1/experiments/pop-vs-ranker/results").json()["interleaving"]
    decided = block["wins"]["popularity"] + block["wins"]["ranker"]
    share = round(block["wins"]["ranker"] / decided * 100)
    log_in(page, base, "pm-interleaving")

    page.goto(f"{base}/experiments/pop-vs-ranker/results")
    assert page.locator("#verdict").inner_text().startswith("ranker is the better ranker")
    words = page.locator("#preference-words").inner_text()
    assert words.startswith(f"Of {decided:,} users with a preference, {share}% preferred ranker's pins over "
                            "popularity's; p ")
    assert f"{block['delta'] * 100:+.1f} pp" in page.locator("#preference-delta").inner_text()
    page.wait_for_selector("#preference .main-svg")  # plotly drew Δ over time
    shot(page, "interleaving-results")

    page.goto(f"{base}/experiments/pop-vs-ranker/")
    assert page.locator("#design").inner_text() == "interleaving"


def test_the_csv_leads_with_the_preference_per_team(db):
    pm = UserFactory(username="pm-csv", role="experimenter")
    interleaved_experiment(pm, "csv-check", click={"popularity": 0.08, "ranker": 0.08}, users=120, days=2)
    api = as_user(pm)
    block = api.get("/api/v1/experiments/csv-check/results").json()["interleaving"]
    rows = list(csv.DictReader(io.StringIO(api.get("/api/v1/experiments/csv-check/results?format=csv")
                                           .content.decode())))
    preference = [r for r in rows if r["metric"] == "interleaving_preference"]
    assert [r["variant"] for r in preference] == ["popularity", "ranker"] and rows[:2] == preference
    control, treatment = preference
    assert int(treatment["users"]) == block["users"]
    means = [float(r["mean (metric units)"]) for r in preference]
    assert means[1] - means[0] == pytest.approx(float(treatment["absolute_lift (metric units)"]), abs=1e-5)
    assert float(treatment["absolute_lift (metric units)"]) == pytest.approx(block["delta"], rel=1e-5)
    assert treatment["significant"] == str(block["significant"])
