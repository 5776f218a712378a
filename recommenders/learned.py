"""Learned recommenders: item embeddings with an ANN index, and EASE."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from recommenders.base import Param, Query, Recommender, register
from recommenders.data import InteractionData


def training_matrix(data: InteractionData, boards_as_users: bool) -> sparse.csr_matrix:
    """Rows that co-engage pins: users and, on Pinterest-like data, boards too (a board
    is a curator saying these pins go together)."""
    rows = [data.user_pin.tocsr().astype(np.float32)]
    if boards_as_users and data.board_pin.shape[0]:
        rows.append(data.board_pin.tocsr().astype(np.float32))
    return sparse.vstack(rows).tocsr()


@register
class Embedding(Recommender):
    """Item embeddings from implicit ALS over users (and boards) x pins, served from a
    usearch inner-product index: the query vector is the weighted sum of the query
    pins' vectors."""

    name = "embedding"
    description = "ALS item embeddings (implicit) with an approximate nearest-neighbour index (usearch)."
    params = {
        "factors": Param(int, 64, 4, 512),
        "regularization": Param(float, 0.05, 0.0, 100.0),
        "alpha": Param(float, 10.0, 0.0, 1000.0, "confidence weight of an engagement"),
        "iterations": Param(int, 15, 1, 100),
        "boards_as_users": Param(bool, True),
        "candidates": Param(int, 300, 10, 10_000, "neighbours fetched from the index per request"),
        "seed": Param(int, 42, 0, 2**31 - 1),
        "num_threads": Param(int, 0, 0, 1024, "ALS and index threads, 0 for every core; 1 builds the same "
                             "model every time (threads finish in any order)"),
    }

    def fit(self, data: InteractionData) -> Embedding:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits
        from usearch.index import Index

        matrix = training_matrix(data, self.config["boards_as_users"]) * self.config["alpha"]
        # implicit's own threads do the work; BLAS threads on top only contend. The model is
        # made inside the limit too: its constructor checks it, and warns otherwise.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(factors=self.config["factors"], iterations=self.config["iterations"],
                                            regularization=self.config["regularization"],
                                            random_state=self.config["seed"],
                                            num_threads=self.config["num_threads"])
            model.fit(matrix.tocsr(), show_progress=False)
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self.n_pins = len(self.item_factors)
        self.index = Index(ndim=self.item_factors.shape[1], metric="ip", dtype="f32")
        known = np.flatnonzero(np.abs(self.item_factors).sum(axis=1) > 0)
        if len(known):
            self.index.add(known, self.item_factors[known], threads=self.config["num_threads"])
        return self

    def state(self):
        # The built index is part of the artifact: rebuilding it costs seconds at
        # 100,000 pins, and a rebuilt graph could answer slightly differently.
        return {"item_factors": self.item_factors, "index": np.frombuffer(bytes(self.index.save()), dtype=np.uint8)}

    def restore(self, state):
        from usearch.index import Index

        self.item_factors = np.asarray(state["item_factors"], dtype=np.float32)
        self.n_pins = len(self.item_factors)
        self.index = Index.restore(state["index"].tobytes())

    def score(self, query: Query, user_topics=None) -> np.ndarray:
        scores = np.zeros(self.n_pins)
        if not query or len(self.index) == 0:
            return scores
        vector = sum(w * self.item_factors[p] for p, w in query).astype(np.float32)
        if not np.any(vector):
            return scores
        found = self.index.search(vector, min(self.config["candidates"] + len(query), len(self.index)))
        keys = np.asarray(found.keys, dtype=np.int64)
        # Exact dot products for the neighbours found, shifted so every one scores above 0.
        dots = self.item_factors[keys].astype(np.float64) @ vector.astype(np.float64)
        scores[keys] = dots - dots.min() + 1e-6
        return scores


@register
class Ease(Recommender):
    """EASE (Steck 2019): a closed-form item-item linear autoencoder,
    B = I - P / diag(P) with P = (X^T X + lambda I)^-1. Dense in the number of
    items, so it keeps the `max_items` most engaged pins."""

    name = "ease"
    description = "EASE item-item linear autoencoder (closed form) over the most engaged pins."
    params = {
        "l2": Param(float, 300.0, 0.0, 1e7, "ridge penalty lambda"),
        "max_items": Param(int, 5000, 10, 20_000, "pins kept (by engagement); memory grows with its square"),
        "boards_as_users": Param(bool, True),
    }

    def fit(self, data: InteractionData) -> Ease:
        matrix = training_matrix(data, self.config["boards_as_users"])
        matrix.data[:] = 1.0
        counts = np.asarray(matrix.sum(axis=0)).ravel()
        keep = np.sort(np.argsort(-counts)[: self.config["max_items"]])
        keep = keep[counts[keep] > 0]
        x = matrix[:, keep]
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.config["l2"]
        p = np.linalg.inv(gram)
        b = -p / np.diag(p)
        np.fill_diagonal(b, 0.0)
        self.items = keep.astype(np.int64)
        self.weights = b.astype(np.float32)
        self.n_pins = data.n_pins
        self._prepare()
        return self

    def _prepare(self):
        self.position = {int(p): i for i, p in enumerate(self.items)}

    def state(self):
        return {"items": self.items, "weights": self.weights, "n_pins": np.asarray([self.n_pins])}

    def restore(self, state):
        self.items, self.weights = state["items"], state["weights"]
        self.n_pins = int(state["n_pins"][0])
        self._prepare()

    def score(self, query: Query, user_topics=None) -> np.ndarray:
        scores = np.zeros(self.n_pins)
        rows = [(self.position[p], w) for p, w in query if p in self.position]
        if rows:
            idx = np.fromiter((i for i, _ in rows), dtype=np.int64)
            w = np.fromiter((w for _, w in rows), dtype=np.float64)
            scores[self.items] = w @ self.weights[idx]
        return scores
