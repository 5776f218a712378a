"""Each variant shows the offline numbers of the version it serves, and a treatment's
offline NDCG difference from its control is given only when both numbers come from the
same held-out window or the same dataset."""

import pytest

from experiments import services
from recommenders.models import ModelVersion, OfflineEvaluation
from recommenders.offline_compare import holdout_words
from recommenders.selectors import experiment_offline, offline_of_experiments

pytestmark = pytest.mark.django_db

DAY = ("2026-12-07T00:00:00+00:00", "2026-12-08T00:00:00+00:00")
EARLIER = ("2026-12-01T00:00:00+00:00", "2026-12-02T00:00:00+00:00")


def version(name, v, ndcg=None, coverage=0.2, users=1234, window=DAY, active=False, gate=None):
    offline = {} if ndcg is None else {"ndcg_at_10": ndcg, "coverage": coverage, "users": users,
                                       "holdout_start": window[0], "holdout_end": window[1]}
    return ModelVersion.objects.create(name=name, version=v, path=f"/nowhere/{name}/{v}", build_seconds=1.0,
                                       size_bytes=1, is_active=active, offline=offline, gate=gate or {})


def experiment(owner, key, control, treatment):
    """control and treatment: recommender configs, with their pinned version if any."""
    layer = services.create_layer(key=f"layer-{key}", name=key)
    return services.create_experiment(actor=owner, layer=layer, key=key, name=key, variants=[
        {"key": "in-use", "weight": 50, "is_control": True, "recommender": control},
        {"key": "retrained", "weight": 50, "recommender": treatment}])


def test_same_held_out_day_gives_the_difference_of_the_two_versions_numbers(experimenter):
    old = version("pixie", "v1", ndcg=0.1012, coverage=0.31, users=4321)
    new = version("pixie", "v2", ndcg=0.1043, coverage=0.29, users=4321)
    e = experiment(experimenter, "same-day", {"name": "pixie", "version": "v1"}, {"name": "pixie", "version": "v2"})

    offline = experiment_offline(e)

    control, treatment = offline.variants
    assert (control.variant, control.version, control.numbers.ndcg_at_10, control.numbers.coverage,
            control.numbers.users) == ("in-use", "v1", old.offline["ndcg_at_10"], 0.31, 4321)
    assert treatment.numbers.ndcg_at_10 == new.offline["ndcg_at_10"]
    assert treatment.numbers.source == control.numbers.source == "held-out day 2026-12-07"
    d = offline.difference("retrained")
    assert d.comparable and d.baseline == "in-use" and d.source == "held-out day 2026-12-07"
    assert d.ndcg_change == pytest.approx(new.offline["ndcg_at_10"] - old.offline["ndcg_at_10"])
    assert d.ndcg_relative_change == pytest.approx(d.ndcg_change / old.offline["ndcg_at_10"])


def test_numbers_from_different_days_are_not_compared(experimenter):
    version("pixie", "v1", ndcg=0.10, window=EARLIER)
    version("pixie", "v2", ndcg=0.12, window=DAY)
    e = experiment(experimenter, "two-days", {"name": "pixie", "version": "v1"}, {"name": "pixie", "version": "v2"})

    d = experiment_offline(e).difference("retrained")

    assert not d.comparable and d.ndcg_change is None and d.ndcg_relative_change is None
    assert "held-out day 2026-12-07" in d.reason and "held-out day 2026-12-01" in d.reason


def test_the_gate_that_measured_both_versions_on_one_day_makes_them_comparable(experimenter):
    """A retrain's gate measures the version in use beside the new one on the same held-out
    day: those are the control's numbers then, shown and used alike."""
    version("pixie", "v1", ndcg=0.10, window=EARLIER)
    baseline = {"ndcg_at_10": 0.095, "coverage": 0.3, "users": 900}
    version("pixie", "v2", ndcg=0.12, users=900, window=DAY,
            gate={"passed": True, "reasons": [], "baseline_version": "v1", "baseline": baseline,
                  "ndcg_change": 0.12 - 0.095, "coverage_change": 0.0, "rule": {}})
    e = experiment(experimenter, "gated", {"name": "pixie", "version": "v1"}, {"name": "pixie", "version": "v2"})

    offline = experiment_offline(e)

    control = offline.variants[0]
    assert control.numbers.ndcg_at_10 == baseline["ndcg_at_10"] and control.numbers.users == baseline["users"]
    assert control.to_json()["source"] == "held-out day 2026-12-07 (measured by retrained's gate)"
    d = offline.difference("retrained")
    assert d.comparable
    assert d.ndcg_change == pytest.approx(offline.variants[1].numbers.ndcg_at_10 - control.numbers.ndcg_at_10)


def evaluation(recommender, dataset, ndcg, params=None):
    return OfflineEvaluation.objects.create(dataset=dataset, recommender=recommender, params=params or {}, k=10,
                                            ndcg=ndcg, precision=0, recall=0, map=0, coverage=0.5, users=800,
                                            build_seconds=1, p99_ms=1)


def test_without_held_out_numbers_each_reads_its_recommenders_offline_evaluation(experimenter):
    version("popularity", "v1")
    version("pixie", "v1")
    evaluation("popularity", "movielens100k", 0.05)
    pop = evaluation("popularity", "synthetic", 0.04)
    pixie = evaluation("pixie", "synthetic", 0.06)
    e = experiment(experimenter, "evaluated", {"name": "popularity", "version": "v1"},
                   {"name": "pixie", "version": "v1"})

    offline = experiment_offline(e)

    assert [v.numbers.source for v in offline.variants] == ["offline evaluation on synthetic"] * 2
    assert [v.numbers.ndcg_at_10 for v in offline.variants] == [pop.ndcg, pixie.ndcg]
    d = offline.difference("retrained")
    assert d.comparable and d.ndcg_change == pytest.approx(pixie.ndcg - pop.ndcg)


def test_one_evaluation_read_for_two_versions_of_a_recommender_is_not_a_difference(experimenter):
    version("pixie", "v1")
    version("pixie", "v2")
    evaluation("pixie", "synthetic", 0.06)
    e = experiment(experimenter, "same-row", {"name": "pixie", "version": "v1"}, {"name": "pixie", "version": "v2"})

    d = experiment_offline(e).difference("retrained")

    assert not d.comparable and "not its versions" in d.reason


def test_held_out_numbers_are_not_compared_with_an_offline_evaluation(experimenter):
    version("popularity", "v1")
    version("pixie", "v2", ndcg=0.12)
    evaluation("popularity", "synthetic", 0.04)
    e = experiment(experimenter, "mixed", {"name": "popularity", "version": "v1"}, {"name": "pixie", "version": "v2"})

    d = experiment_offline(e).difference("retrained")

    assert not d.comparable and "offline evaluation on synthetic" in d.reason


def test_nothing_measured_says_so(experimenter):
    version("popularity", "v1")
    version("pixie", "v1")
    e = experiment(experimenter, "unmeasured", {"name": "popularity", "version": "v1"},
                   {"name": "pixie", "version": "v1"})

    offline = experiment_offline(e)

    assert [v.numbers for v in offline.variants] == [None, None]
    assert offline.difference("retrained").reason == "no offline numbers for either variant"


def test_the_version_frozen_at_start_is_read_not_todays_active_one(experimenter):
    version("pixie", "v1", ndcg=0.10, active=True)
    version("popularity", "v1", ndcg=0.08, active=True)
    e = experiment(experimenter, "frozen", {"name": "popularity"}, {"name": "pixie"})
    assert [v.version for v in experiment_offline(e).variants] == ["v1", "v1"]  # a draft: the active ones
    services.transition(e, "start", actor=experimenter)
    ModelVersion.objects.filter(name="pixie").update(is_active=False)
    version("pixie", "v2", ndcg=0.2, active=True)

    offline = offline_of_experiments([e])[e.pk]

    assert offline.variants[1].version == "v1" and offline.variants[1].numbers.ndcg_at_10 == 0.10


def test_a_longer_window_is_named_by_its_first_and_last_day():
    assert holdout_words("2026-12-01T00:00:00+00:00", "2026-12-08T00:00:00+00:00") == \
        "held-out days 2026-12-01 to 2026-12-07"
    assert holdout_words("garbage", "2026-12-08") == "held-out data"
