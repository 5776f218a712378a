"""Retrieval recommenders: popularity, board co-occurrence, Pixie random walks."""

from __future__ import annotations

import zlib

import numpy as np
from scipy import sparse

from recommenders.base import Param, Query, Recommender, register
from recommenders.data import InteractionData


def _csr(state, prefix, shape_key="shape"):
    return sparse.csr_matrix((state[f"{prefix}_data"], state[f"{prefix}_indices"], state[f"{prefix}_indptr"]),
                             shape=tuple(state[f"{prefix}_{shape_key}"]))


def _csr_state(matrix, prefix):
    m = matrix.tocsr()
    return {f"{prefix}_data": m.data, f"{prefix}_indices": m.indices, f"{prefix}_indptr": m.indptr,
            f"{prefix}_shape": np.asarray(m.shape)}


@register
class Popularity(Recommender):
    name = "popularity"
    description = "Most engaged and saved pins, optionally within the opened pin's topic."
    params = {"same_topic": Param(bool, False, help="only pins of the query pin's topic")}

    def fit(self, data: InteractionData) -> Popularity:
        self.popularity = data.popularity()
        self.topic = data.pin_topic.copy()
        self.n_pins = data.n_pins
        return self

    def state(self):
        return {"popularity": self.popularity, "topic": self.topic}

    def restore(self, state):
        self.popularity, self.topic = state["popularity"], state["topic"]
        self.n_pins = len(self.popularity)

    def score(self, query: Query, user_topics=None) -> np.ndarray:
        if self.config["same_topic"] and query:
            return np.where(self.topic == self.topic[query[0][0]], self.popularity, 0.0)
        return self.popularity


@register
class BoardCooccurrence(Recommender):
    name = "board_cooccurrence"
    description = "Pins saved to the same boards as the query pins (the original Related Pins source)."
    params = {
        "board_size_penalty": Param(float, 0.5, 0.0, 2.0, "a board of n pins counts n^-penalty: big boards say less"),
        "max_boards": Param(int, 100, 1, 100_000, "a popular pin's boards beyond this many, the biggest, are skipped"),
    }

    def fit(self, data: InteractionData) -> BoardCooccurrence:
        self.board_pin = data.board_pin.tocsr().astype(np.float32)
        self._prepare()
        return self

    def _prepare(self):
        sizes = np.asarray(self.board_pin.sum(axis=1)).ravel()
        self.board_size = sizes
        self.board_weight = np.where(sizes > 0, np.maximum(sizes, 1) ** -self.config["board_size_penalty"], 0)
        self.pin_board = self.board_pin.T.tocsr()
        self.n_pins = self.board_pin.shape[1]

    def state(self):
        return _csr_state(self.board_pin, "bp")

    def restore(self, state):
        self.board_pin = _csr(state, "bp")
        self._prepare()

    def score(self, query: Query, user_topics=None) -> np.ndarray:
        # Only the boards the query pins are on, and only their pins, are touched: a
        # full sparse product would walk every save in the catalog per request.
        pb, bp = self.pin_board, self.board_pin
        boards, board_w = [], []
        cap = self.config["max_boards"]
        for pin, weight in query:
            on = pb.indices[pb.indptr[pin] : pb.indptr[pin + 1]]
            if on.size > cap:  # keep the most specific (smallest) boards: bounded work per pin
                on = on[np.argpartition(self.board_size[on], cap - 1)[:cap]]
            boards.append(on)
            board_w.append(np.full(on.size, weight))
        scores = np.zeros(self.n_pins)
        if not boards:
            return scores
        boards, board_w = np.concatenate(boards), np.concatenate(board_w)
        if boards.size == 0:
            return scores
        starts, ends = bp.indptr[boards], bp.indptr[boards + 1]
        lengths = ends - starts
        pins = bp.indices[np.repeat(ends - lengths.cumsum(), lengths) + np.arange(lengths.sum())]
        weights = np.repeat(board_w * self.board_weight[boards], lengths)
        return np.bincount(pins, weights=weights, minlength=self.n_pins)


@register
class Pixie(Recommender):
    """Random walks with restart on the pin-board bipartite graph (Eksombatchai et al.
    2018): walkers start at the query pins, hop pin -> board -> pin, restart with
    probability `restart_probability`, and the pins visited most are recommended."""

    name = "pixie"
    description = "Pixie-style random walks with restart on the pin-board graph, biased to the user's topics."
    params = {
        "steps": Param(int, 20_000, 100, 1_000_000, "total walk steps per request"),
        "restart_probability": Param(float, 0.5, 0.01, 1.0, "chance a walker jumps back to a query pin"),
        "bias_strength": Param(float, 0.5, 0.0, 1.0, "how strongly hops prefer pins of the user's topics"),
        "n_p": Param(int, 200, 1, 100_000, "early stop: once this many pins ..."),
        "n_v": Param(int, 4, 1, 1000, "... have each been visited this many times"),
        "walkers": Param(int, 256, 1, 100_000, "walkers moved together per query pin"),
    }

    def fit(self, data: InteractionData) -> Pixie:
        self.board_pin = data.board_pin.tocsr().astype(np.float32)
        self.topic = data.pin_topic.astype(np.int32)
        self._prepare()
        return self

    def _prepare(self):
        self.pin_board = self.board_pin.T.tocsr()
        self.n_pins = self.board_pin.shape[1]

    def state(self):
        return {**_csr_state(self.board_pin, "bp"), "topic": self.topic}

    def restore(self, state):
        self.board_pin = _csr(state, "bp")
        self.topic = state["topic"]
        self._prepare()

    def _hop(self, positions, rng, from_indptr, from_indices):
        """Each walker moves to a uniformly random neighbour; walkers with none stay -1."""
        deg = from_indptr[positions + 1] - from_indptr[positions]
        has = deg > 0
        choice = np.full(len(positions), -1, dtype=np.int64)
        offsets = (rng.random(has.sum()) * deg[has]).astype(np.int64)
        choice[has] = from_indices[from_indptr[positions[has]] + offsets]
        return choice

    def walk(self, pin: int, steps: int, rng, user_topics) -> np.ndarray:
        """Visit counts per pin of `steps` hops of walkers from `pin`."""
        visits = np.bincount(self._landings(pin, steps, rng, user_topics), minlength=self.n_pins).astype(np.float64)
        visits[pin] = 0.0
        return visits

    def _landings(self, pin: int, steps: int, rng, user_topics) -> np.ndarray:
        """Where each hop of the walkers from `pin` landed."""
        pb, bp = self.pin_board, self.board_pin
        n_walkers = min(self.config["walkers"], max(1, steps))
        positions = np.full(n_walkers, pin, dtype=np.int64)
        n_p, n_v = self.config["n_p"], self.config["n_v"]
        alpha, bias = self.config["restart_probability"], self.config["bias_strength"]
        # Every landing is appended; counts are taken every few rounds for the early stop
        # (a bincount over the catalog per hop would cost more than the walk).
        landed = np.empty(steps + n_walkers, dtype=np.int64)
        done, rounds = 0, 0
        while done < steps:
            boards = self._hop(positions, rng, pb.indptr, pb.indices)
            ok = boards >= 0
            nxt = np.full(n_walkers, pin, dtype=np.int64)
            nxt[ok] = self._hop(boards[ok], rng, bp.indptr, bp.indices)
            if user_topics is not None and bias > 0:
                # Biased step: a walker that landed off the user's topics tries once more.
                off = ok & (nxt >= 0) & ~np.isin(self.topic[np.maximum(nxt, 0)], user_topics)
                retry = off & (rng.random(n_walkers) < bias)
                if retry.any():
                    again = self._hop(boards[retry], rng, bp.indptr, bp.indices)
                    nxt[np.flatnonzero(retry)[again >= 0]] = again[again >= 0]
            nxt[nxt < 0] = pin
            landed[done : done + n_walkers] = nxt
            done += n_walkers
            rounds += 1
            restart = rng.random(n_walkers) < alpha
            positions = np.where(restart, pin, nxt)
            if rounds % 8 == 0:
                _, counts = np.unique(landed[:done], return_counts=True)
                if (counts >= n_v).sum() >= n_p + 1:  # +1: the query pin itself is visited too
                    break
        return landed[:done]

    def score(self, query: Query, user_topics=None) -> np.ndarray:
        if not query:
            return np.zeros(self.n_pins)
        weights = np.array([max(w, 0.0) for _, w in query])
        weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(query), 1 / len(query))
        # Deterministic per query: the same request gets the same grid.
        seed = zlib.crc32(np.asarray([p for p, _ in query], dtype=np.int64).tobytes())
        rng = np.random.default_rng(seed)
        combined = np.zeros(self.n_pins)
        for (pin, _), share in zip(query, weights, strict=True):
            if share <= 0:
                continue
            steps = max(int(self.config["steps"] * share), 1)
            visited, counts = np.unique(self._landings(pin, steps, rng, user_topics), return_counts=True)
            away = visited != pin  # a walk's own start is not evidence
            combined[visited[away]] += np.sqrt(counts[away])  # multi-hit boosting: (sum_q sqrt V_q)^2
        return combined**2
