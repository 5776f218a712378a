"""Templates: a team's saved primary metric, guardrails with margins, MDE and targeting,
offered by the API and the create form; what a request gives itself wins."""

import pytest

from analysis.models import Metric
from analysis.services import guardrail_margin
from experiments import services
from experiments.models import Experiment
from tests.conftest import as_user
from tests.experiments.conftest import experiment_body

pytestmark = pytest.mark.django_db

RANKING_TEAM = {"key": "ranking-team", "name": "Ranking team", "description": "What the ranking team ships on.",
                "primary_metric": "save_rate",
                "guardrails": [{"metric": "hide_rate", "margin": 0.01}, {"metric": "closeup_ctr", "margin": None}],
                "minimum_detectable_effect": 0.03,
                "targeting": {"attribute": "country", "op": "in", "value": ["US", "CA"]}}


def test_a_template_is_saved_and_bad_ones_are_refused_by_field(experimenter, viewer):
    client = as_user(experimenter)
    bad = client.post("/api/v1/templates", {**RANKING_TEAM, "primary_metric": "nope",
                                            "guardrails": [{"metric": "hide_rate", "margin": 2},
                                                           {"metric": "made_up"}],
                                            "minimum_detectable_effect": 0, "targeting": {"op": "??"}}, format="json")
    assert bad.status_code == 400
    errors = bad.json()
    assert "nope" in errors["primary_metric"][0]
    assert any("fraction from 0 to 1" in m for m in errors["guardrails"])
    assert any("made_up" in m for m in errors["guardrails"])
    assert errors["minimum_detectable_effect"] and errors["targeting"]
    assert as_user(viewer).post("/api/v1/templates", RANKING_TEAM, format="json").status_code == 403
    made = client.post("/api/v1/templates", RANKING_TEAM, format="json")
    assert made.status_code == 201 and made.json()["guardrails"][0] == {"metric": "hide_rate", "margin": 0.01}
    assert client.post("/api/v1/templates", RANKING_TEAM, format="json").status_code == 400  # the key is taken
    assert as_user(viewer).get("/api/v1/templates").json()[0]["key"] == "ranking-team"


def test_an_experiment_from_a_template_takes_what_the_request_does_not_give(experimenter, layer):
    client = as_user(experimenter)
    client.post("/api/v1/templates", RANKING_TEAM, format="json")
    body = {k: v for k, v in experiment_body().items() if k not in ("primary_metric", "guardrail_metrics")}
    made = client.post("/api/v1/experiments", {**body, "template": "ranking-team"}, format="json")
    assert made.status_code == 201, made.json()
    e = made.json()
    assert (e["primary_metric"], e["guardrail_metrics"], e["minimum_detectable_effect"]) == (
        "save_rate", ["hide_rate", "closeup_ctr"], 0.03)
    assert e["guardrail_margins"] == {"hide_rate": 0.01, "closeup_ctr": None}
    assert e["targeting"] == RANKING_TEAM["targeting"] and e["template"] == "ranking-team"
    # What the request gives wins over the template.
    services.create_layer(key="second", name="Second")
    own = client.post("/api/v1/experiments", {**body, "key": "own-primary", "layer": "second",
                                              "template": "ranking-team", "primary_metric": "closeup_ctr",
                                              "guardrail_metrics": ["hide_rate"]}, format="json")
    assert own.status_code == 201, own.json()
    assert own.json()["primary_metric"] == "closeup_ctr" and own.json()["guardrail_metrics"] == ["hide_rate"]
    assert own.json()["guardrail_margins"] == {"hide_rate": 0.01}  # the template's margin for a kept guardrail
    unknown = client.post("/api/v1/experiments", {**body, "key": "x2", "template": "nobody"}, format="json")
    assert unknown.status_code == 400 and "ranking-team" in unknown.json()["template"][0]


def test_the_analysis_judges_a_guardrail_on_the_experiments_margin(experimenter, layer):
    as_user(experimenter).post("/api/v1/templates", RANKING_TEAM, format="json")
    body = {k: v for k, v in experiment_body().items() if k not in ("primary_metric", "guardrail_metrics")}
    as_user(experimenter).post("/api/v1/experiments", {**body, "template": "ranking-team"}, format="json")
    e = Experiment.objects.get(key="ranker-v2")
    hide, ctr = Metric.objects.get(key="hide_rate"), Metric.objects.get(key="closeup_ctr")
    assert hide.guardrail_margin == 0.02  # the metric's own
    assert guardrail_margin(e, hide) == 0.01  # the team's
    assert guardrail_margin(e, ctr) is None  # untested by the team's choice
    e.guardrail_margins = {}
    assert guardrail_margin(e, hide) == 0.02


def test_margins_for_metrics_that_are_not_guardrails_are_refused(experimenter, layer):
    made = as_user(experimenter).post("/api/v1/experiments", {**experiment_body(),
                                                              "guardrail_margins": {"save_rate": 0.01}},
                                      format="json")
    assert made.status_code == 400 and "not one of this experiment's guardrails" in made.json()["guardrail_margins"][0]


def test_the_create_form_offers_templates_and_fills_from_one(experimenter, layer):
    client = as_user(experimenter)
    client.post("/api/v1/templates", RANKING_TEAM, format="json")
    page = client.get("/experiments/new?template=ranking-team").content.decode()
    assert "Start from a template" in page and 'value="ranking-team" selected' in page
    assert "hide_rate 1.0%, closeup_ctr untested" in page
    form = {"key": "from-form", "name": "From the form", "layer": "closeup-ranking", "traffic_percent": "100",
            "control": "0", "variant-0-key": "control", "variant-0-weight": "50", "variant-0-recommender": "popularity",
            "variant-1-key": "treatment", "variant-1-weight": "50", "variant-1-recommender": "pixie",
            "primary_metric": "save_rate", "guardrail_metrics": ["hide_rate"],
            "minimum_detectable_effect_percent": "3", "space": "free", "template": "ranking-team",
            "targeting": ""}
    assert client.post("/experiments/new", form).status_code == 302
    e = Experiment.objects.get(key="from-form")
    assert e.template == "ranking-team" and e.guardrail_margins == {"hide_rate": 0.01}
    assert e.targeting == {}  # emptied on the form: nobody targeted, whatever the template said
