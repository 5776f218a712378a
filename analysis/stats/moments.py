"""Sufficient statistics of per-user variables and the metric values built on them."""

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Moments:
    """For n users and k per-user variables x_1..x_k: n, Σx_i, and Σx_i·x_j.

    `products[i][j]` is Σ over users of x_i·x_j (symmetric). The mean vector and the
    sample covariance matrix (ddof=1) are all the analysis ever needs of raw data.
    """

    n: int
    sums: tuple[float, ...]
    products: tuple[tuple[float, ...], ...]

    @classmethod
    def from_data(cls, columns) -> "Moments":
        """From raw per-user data (one array per variable): for tests and simulations."""
        x = np.asarray(columns, dtype=float)
        if x.ndim == 1:
            x = x[None, :]
        return cls(n=x.shape[1], sums=tuple(x.sum(axis=1)), products=tuple(map(tuple, x @ x.T)))

    @property
    def mean(self) -> np.ndarray:
        return np.asarray(self.sums, dtype=float) / self.n

    @property
    def covariance(self) -> np.ndarray:
        """Sample covariance (ddof=1); zeros when n < 2."""
        k = len(self.sums)
        if self.n < 2:
            return np.zeros((k, k))
        s = np.asarray(self.sums, dtype=float)
        q = np.asarray(self.products, dtype=float)
        cov = (q - np.outer(s, s) / self.n) / (self.n - 1)
        # Cancellation can leave a variance a hair below zero when it is really zero.
        np.fill_diagonal(cov, np.maximum(np.diag(cov), 0.0))
        return cov

    def select(self, idx) -> "Moments":
        idx = list(idx)
        q = np.asarray(self.products, dtype=float)[np.ix_(idx, idx)]
        return Moments(self.n, tuple(self.sums[i] for i in idx), tuple(map(tuple, q)))

    def __add__(self, other: "Moments") -> "Moments":
        return Moments(
            self.n + other.n,
            tuple(a + b for a, b in zip(self.sums, other.sums, strict=True)),
            tuple(tuple(a + b for a, b in zip(r1, r2, strict=True))
                  for r1, r2 in zip(self.products, other.products, strict=True)),
        )


class Kind(Protocol):
    """What the statistics ask of a metric kind (analysis/metric_kinds implements it)."""

    def value(self, moments: "Moments") -> "MetricValue": ...

    def degrees_of_freedom(self, treatment: "MetricValue", control: "MetricValue") -> float: ...


@dataclass(frozen=True)
class MetricValue:
    """One variant's value of one metric, with what inference needs about it.

    `unit_variance` is the variance of the per-user linearised value (for a mean:
    the per-user variance; for a ratio: the delta method's), so that the variance of
    `value` is unit_variance / n. `gradient` is that linearisation's weights on the
    metric's raw variables, kept for the covariance with a CUPED covariate. `kind`
    computed it and chooses the test.
    """

    kind: Kind
    n: int
    value: float
    unit_variance: float
    gradient: tuple[float, ...]

    @property
    def variance(self) -> float:
        return self.unit_variance / self.n if self.n else float("nan")
