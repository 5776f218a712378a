"""Offline evaluation with the protocol of Microsoft Recommenders' benchmark table:
a random 75/25 split stratified by user (each user's ratings split 75/25), top-10
lists from the training data with items the user rated in training removed, every
test item relevant. Metrics as their python_evaluation defines them. Pure: numpy only.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def stratified_split(users: np.ndarray, items: np.ndarray, ratio: float = 0.75, seed: int = 42):
    """Boolean mask of training rows: for each user, round(ratio * n) of their rows at random."""
    rng = np.random.default_rng(seed)
    train = np.zeros(len(users), dtype=bool)
    order = np.argsort(users, kind="stable")
    bounds = np.flatnonzero(np.diff(users[order])) + 1
    for group in np.split(order, bounds):
        chosen = rng.permutation(group)[: int(round(ratio * len(group)))]
        train[chosen] = True
    return train


@dataclass(frozen=True)
class RankingMetrics:
    ndcg: float
    precision: float
    recall: float
    map: float
    coverage: float
    users: int


def ranking_metrics(recommended: dict[int, list[int]], relevant: dict[int, set[int]], k: int,
                    n_items: int) -> RankingMetrics:
    ndcg = precision = recall = ap = 0.0
    shown = set()
    users = [u for u in relevant if relevant[u]]
    for u in users:
        recs = recommended.get(u, [])[:k]
        rel = relevant[u]
        shown.update(recs)
        hits = [1.0 if r in rel else 0.0 for r in recs]
        dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
        idcg = sum(1 / math.log2(i + 2) for i in range(min(len(rel), k)))
        ndcg += dcg / idcg
        n_hits = sum(hits)
        precision += n_hits / k
        recall += n_hits / len(rel)
        running, total = 0, 0.0
        for i, h in enumerate(hits):
            if h:
                running += 1
                total += running / (i + 1)
        ap += total / len(rel)
    n = len(users)
    return RankingMetrics(ndcg / n, precision / n, recall / n, ap / n, len(shown) / n_items, n)


def timed_lists(recommend: Callable[[int], list[int]], users, repeats: int = 1) -> tuple[dict, float]:
    """Recommendation lists per user, and the p99 latency of one call in ms."""
    lists, times = {}, []
    for u in users:
        started = time.perf_counter()
        lists[u] = recommend(u)
        times.append(time.perf_counter() - started)
    return lists, float(np.percentile(times, 99) * 1000)
