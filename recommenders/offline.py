"""The offline evaluation workflow: datasets as train/test InteractionData, each
recommender fitted on train and scored on test (recommenders.evaluation)."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recommenders import evaluation as ev
from recommenders import movielens, registry
from recommenders.data import InteractionData, from_edges
from recommenders.synthetic import generate_world

K = 10
# Hyper-parameters tuned on a split inside the training data, never on the test users' held-out items.
TUNING = {"ease": ("l2", [100.0, 300.0, 1000.0]), "embedding": ("regularization", [0.05, 1.0, 10.0])}


@dataclass(frozen=True)
class Split:
    train: InteractionData
    relevant: dict[int, set[int]]  # user index -> held-out pin indexes


def split_interactions(users, items, weights, n_items, user_ids, boards, n_boards, topics, seed=42) -> Split:
    train = ev.stratified_split(users, items, seed=seed)
    relevant: dict[int, set[int]] = {}
    for u, i in zip(users[~train], items[~train], strict=True):
        relevant.setdefault(int(u), set()).add(int(i))
    data = from_edges(np.arange(n_items), topics, np.zeros(n_items), boards, n_boards,
                      list(zip(users[train], items[train], weights[train], strict=True)), user_ids)
    return Split(train=data, relevant=relevant)


def movielens_split(cache: Path) -> Split:
    r = movielens.load(cache)
    genres = sorted({g for gs in r.item_genres for g in gs})
    genre_index = {g: i for i, g in enumerate(genres)}
    boards = [(genre_index[g], i) for i, gs in enumerate(r.item_genres) for g in gs]
    topics = [genre_index[gs[0]] if gs else 0 for gs in r.item_genres]
    return split_interactions(r.users, r.items, np.ones(len(r.users)), r.n_items,
                              [str(u) for u in range(r.n_users)], boards, len(genres), topics)


def synthetic_split(n_pins=5000, n_users=2000, seed=7) -> Split:
    world = generate_world(n_pins=n_pins, n_users=n_users, seed=seed)
    up = world.data.user_pin.tocoo()
    bp = world.data.board_pin.tocoo()
    return split_interactions(up.row.astype(np.int64), up.col.astype(np.int64), up.data, world.data.n_pins,
                              list(world.data.user_ids), list(zip(bp.row, bp.col, strict=True)),
                              world.data.board_pin.shape[0], world.data.pin_topic)


@dataclass(frozen=True)
class Result:
    recommender: str
    params: dict
    metrics: ev.RankingMetrics
    build_seconds: float
    p99_ms: float


def evaluate(split: Split, name: str, params: dict | None = None) -> Result:
    data = split.train
    started = time.perf_counter()
    rec = registry.create(name, params or {}).fit(data)
    build = time.perf_counter() - started
    users = sorted(split.relevant)
    lists, p99 = ev.timed_lists(lambda u: [p for p, _ in rec.for_user(data.history(data.user_ids[u]), K)], users)
    return Result(name, rec.config, ev.ranking_metrics(lists, split.relevant, K, data.n_pins), build, p99)


def tuned_params(split: Split, name: str) -> dict:
    if name not in TUNING:
        return {}
    param, grid = TUNING[name]
    up = split.train.user_pin.tocoo()
    inner = split_interactions(up.row.astype(np.int64), up.col.astype(np.int64), up.data, split.train.n_pins,
                               list(split.train.user_ids), [], 0, split.train.pin_topic, seed=7)
    scores = {value: evaluate(inner, name, {param: value}).metrics.ndcg for value in grid}
    return {param: max(scores, key=scores.get)}


def evaluate_all(split: Split, names=None, progress: Callable[[str], None] | None = None) -> list[Result]:
    results = []
    for name in names or registry.names():
        results.append(evaluate(split, name, tuned_params(split, name)))
        if progress:
            progress(name)
    return sorted(results, key=lambda r: -r.metrics.ndcg)
