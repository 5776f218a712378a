"""Creating an experiment without bucket arithmetic: the layer picker says what is free,
the default takes the free space, a share is given in percent, layers are made on the
page, the MDE is a percent, the default variants differ, and the metrics show on the
experiment's page."""

import pytest

from experiments import services
from experiments.models import Experiment, Layer
from tests.conftest import as_user

pytestmark = pytest.mark.django_db


def _form(**over):
    form = {"key": "second", "name": "Second", "layer": "main", "traffic_percent": "100", "control": "0",
            "variant-0-key": "control", "variant-0-weight": "50", "variant-0-recommender": "popularity",
            "variant-1-key": "treatment", "variant-1-weight": "50", "variant-1-recommender": "pixie",
            "primary_metric": "closeup_ctr", "guardrail_metrics": ["hide_rate"],
            "minimum_detectable_effect_percent": "3", "space": "free"}
    form.update(over)
    return form


def _take(experimenter, start, end, key="first"):
    layer = Layer.objects.get(key="main")
    return services.create_experiment(actor=experimenter, layer=layer, key=key, name=key, layer_buckets=(start, end),
                                      variants=[{"key": "a", "weight": 50, "is_control": True,
                                                 "recommender": {"name": "popularity"}},
                                                {"key": "b", "weight": 50, "recommender": {"name": "pixie"}}])


def test_the_free_space_of_a_partly_taken_layer_is_offered_and_used(experimenter):
    services.create_layer(key="main", name="Main")
    _take(experimenter, 0, 5000)
    client = as_user(experimenter)
    page = client.get("/experiments/new").content.decode()
    assert "50% free: 50–100% of the layer" in page and "first uses 0–50% of the layer" in page
    r = client.post("/experiments/new", _form())
    assert r.status_code == 302, r.content.decode()[:2000]
    second = Experiment.objects.get(key="second")
    assert (second.bucket_start, second.bucket_end) == (5000, 10_000)
    assert second.minimum_detectable_effect == pytest.approx(0.03)
    detail = client.get("/experiments/second/").content.decode()
    assert "Closeup CTR (closeup_ctr)" in detail and "Hide rate (hide_rate)" in detail and "3.0% relative" in detail


def test_a_full_layer_says_so_in_words_and_a_share_is_given_in_percent(experimenter):
    services.create_layer(key="main", name="Main")
    _take(experimenter, 0, 10_000)
    client = as_user(experimenter)
    assert "· full" in client.get("/experiments/new").content.decode()
    page = client.post("/experiments/new", _form()).content.decode()
    assert "partly taken by first (0–100% of the layer" in page and "nothing is free" in page
    Experiment.objects.filter(key="first").update(bucket_end=2500)
    page = client.post("/experiments/new", _form(space="custom", share_from="10", share_to="40")).content.decode()
    assert "10–40% of the layer overlaps first" in page and "free: 25–100% of the layer" in page
    assert client.post("/experiments/new", _form(space="custom", share_from="25", share_to="40")).status_code == 302
    assert Experiment.objects.filter(key="second", bucket_start=2500, bucket_end=4000).exists()


def test_layers_are_created_on_the_page_and_the_default_variants_differ(experimenter):
    client = as_user(experimenter)
    page = client.get("/experiments/new").content.decode()
    assert "no layers yet: create one below" in page
    # The control serves the surface default (popularity); the treatment something else.
    assert '<option value="popularity" selected>' in page.split('id="variant-0-recommender"')[1].split("</select>")[0]
    treatment = page.split('id="variant-1-recommender"')[1].split("</select>")[0]
    assert 'selected' in treatment and '<option value="popularity" selected>' not in treatment
    r = client.post("/layers/new", {"layer_key": "Bad key!", "layer_name": "x", "layer_stage": "whole"}, follow=True)
    assert "letters, digits, hyphens and underscores" in r.content.decode() and not Layer.objects.exists()
    r = client.post("/layers/new", {"layer_key": "ranking-layer", "layer_name": "Rankers", "layer_stage": "ranking"},
                    follow=True)
    page = r.content.decode()
    assert Layer.objects.get(key="ranking-layer").stage == "ranking"
    assert '<option value="ranking-layer" selected>' in page and "100% free" in page and "Salt" not in page


def test_pausing_on_a_regressed_guardrail_is_chosen_on_the_form(experimenter):
    services.create_layer(key="main", name="Main")
    services.create_layer(key="other", name="Other")
    client = as_user(experimenter)
    assert "Pause by itself when a guardrail regresses" in client.get("/experiments/new").content.decode()
    assert client.post("/experiments/new", _form(pause_on_guardrail_regression="on")).status_code == 302
    assert client.post("/experiments/new", _form(key="third", layer="other")).status_code == 302
    assert Experiment.objects.get(key="second").pause_on_guardrail_regression
    assert not Experiment.objects.get(key="third").pause_on_guardrail_regression
