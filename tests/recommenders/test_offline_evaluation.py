"""The offline protocol and its metrics, against hand-computed answers; MovieLens
when its wheel can be had."""

import math

import numpy as np
import pytest

from recommenders import evaluation as ev
from recommenders import movielens, offline


def test_stratified_split_keeps_75_percent_of_each_user():
    users = np.repeat(np.arange(50), np.arange(4, 54))
    items = np.arange(len(users))
    train = ev.stratified_split(users, items)
    for u in range(50):
        n = (users == u).sum()
        assert train[users == u].sum() == round(0.75 * n)
    assert np.array_equal(train, ev.stratified_split(users, items))  # seeded


def test_metrics_match_a_hand_computed_example():
    recommended = {0: [1, 2, 3], 1: [7, 8, 9]}
    relevant = {0: {2, 5}, 1: {9}}
    m = ev.ranking_metrics(recommended, relevant, k=3, n_items=10)
    ndcg0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    ndcg1 = (1 / math.log2(4)) / 1
    assert m.ndcg == pytest.approx((ndcg0 + ndcg1) / 2)
    assert m.precision == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert m.recall == pytest.approx((1 / 2 + 1) / 2)
    assert m.map == pytest.approx(((1 / 2) / 2 + (1 / 3) / 1) / 2)
    assert m.coverage == pytest.approx(6 / 10)


def test_on_a_synthetic_world_learned_and_graph_recommenders_beat_popularity():
    split = offline.synthetic_split(n_pins=1500, n_users=400, seed=3)
    params = {"ranker": {"training_queries": 400, "n_estimators": 50}}
    scores = {name: offline.evaluate(split, name, params.get(name)).metrics.ndcg
              for name in ("popularity", "board_cooccurrence", "pixie", "embedding", "ease", "ranker")}
    for name in ("board_cooccurrence", "pixie", "ease", "ranker"):
        assert scores[name] > scores["popularity"] * 1.2, scores


def test_movielens_100k_reaches_the_published_numbers(tmp_path_factory):
    from django.conf import settings

    cache = settings.VAR_DIR / "datasets"
    try:
        split = offline.movielens_split(cache)
    except movielens.DatasetUnavailable as exc:
        pytest.skip(f"MovieLens-100k unavailable: {exc}")
    assert split.train.n_pins == 1682 and len(split.relevant) == 943
    assert split.train.user_pin.nnz + sum(map(len, split.relevant.values())) == 100_000
    ease = offline.evaluate(split, "ease", {"l2": 300.0})
    assert ease.metrics.ndcg > 0.475  # BiVAE's nDCG@10 in Microsoft Recommenders' table


def test_on_movielens_100k_the_ranker_beats_every_source():
    """The ranker earns its stage: above EASE, the best single recommender, and at 0.50.
    About three minutes (it fits its five sources on two inner splits, then on everything)."""
    from django.conf import settings

    try:
        split = offline.movielens_split(settings.VAR_DIR / "datasets")
    except movielens.DatasetUnavailable as exc:
        pytest.skip(f"MovieLens-100k unavailable: {exc}")
    ranker = offline.evaluate(split, "ranker").metrics.ndcg
    ease = offline.evaluate(split, "ease", offline.tuned_params(split, "ease")).metrics.ndcg
    assert ranker >= 0.50 and ranker > ease, (ranker, ease)
