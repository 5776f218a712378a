"""CUPED: regression adjustment on a pre-experiment covariate (Deng, Xu, Kohavi and
Walker 2013).

Each user's metric (post) is paired with the same metric measured over a period
before their first exposure (pre). With θ the pooled within-variant regression slope
of post on pre, a variant's adjusted value is

    v_adj = v_post − θ · (v_pre − v_pre_pooled)

and its variance shrinks by the factor (1 − ρ²), ρ the post/pre correlation. For a
mean metric this is exactly the treatment coefficient of the OLS fit
post ~ variant dummies + pre. For a ratio metric post and pre are each linearised by
the delta method first (their gradients), as GrowthBook does for ratio metrics.
Randomisation makes v_pre equal in expectation across variants, so the adjustment
removes noise without adding bias.
"""

from dataclasses import dataclass

import numpy as np

from analysis.stats.moments import Kind, MetricValue, Moments


@dataclass(frozen=True)
class CupedResult:
    theta: float
    adjusted: tuple[MetricValue, ...]
    unadjusted: tuple[MetricValue, ...]

    def variance_reduction(self, i: int) -> float:
        before = self.unadjusted[i].unit_variance
        return 1.0 - self.adjusted[i].unit_variance / before if before > 0 else 0.0


def cuped(kind: Kind, variants: list[Moments], post_idx, pre_idx) -> CupedResult:
    """Adjust every variant's value of one metric by its pre-period covariate.

    `variants[v]` holds the moments of the metric's post variables (indices post_idx)
    and pre variables (pre_idx), with their cross products.
    """
    post_idx, pre_idx = list(post_idx), list(pre_idx)
    both = post_idx + pre_idx
    k = len(post_idx)
    parts = []
    for m in variants:
        sub = m.select(both)
        post = kind.value(sub.select(range(k)))
        pre = kind.value(sub.select(range(k, 2 * k)))
        cov = sub.covariance
        g, h = np.asarray(post.gradient), np.asarray(pre.gradient)
        vx, cxy = float(h @ cov[k:, k:] @ h), float(g @ cov[:k, k:] @ h)
        if not (np.isfinite(vx) and np.isfinite(cxy) and np.isfinite(pre.value)):
            # No usable covariate for this variant (a ratio whose pre-period denominator
            # is 0): it is left unadjusted and out of θ's estimate.
            vx, cxy, pre = 0.0, 0.0, None
        parts.append((m.n, post, pre, float(g @ cov[:k, :k] @ g), vx, cxy))
    sxy = sum((n - 1) * c for n, *_, c in parts if n > 1)
    sxx = sum((n - 1) * vx for n, _, _, _, vx, _ in parts if n > 1)
    theta = sxy / sxx if sxx > 0 else 0.0
    pooled = variants[0].select(pre_idx)
    for m in variants[1:]:
        pooled = pooled + m.select(pre_idx)
    pre_pooled = kind.value(pooled).value
    adjusted = []
    for n, post, pre, vy, vx, cxy in parts:
        usable = pre is not None and np.isfinite(pre_pooled)
        value = post.value - theta * (pre.value - pre_pooled) if usable else post.value
        unit_var = max(vy + theta**2 * vx - 2 * theta * cxy, 0.0) if usable else vy
        adjusted.append(MetricValue(kind, n, float(value), float(unit_var), post.gradient))
    # The unadjusted values on the same (ddof=1) footing, for the variance reduction.
    unadjusted = tuple(MetricValue(kind, n, post.value, vy, post.gradient) for n, post, _, vy, _, _ in parts)
    return CupedResult(theta=float(theta), adjusted=tuple(adjusted), unadjusted=unadjusted)


@dataclass(frozen=True)
class Covariate:
    """One pre-period covariate: the value `kind` makes of the variables at `idx` (a
    metric's pre-period count(s), or a 0/1 "active before exposure" indicator as a mean),
    linearised by its gradient per variant as the single covariate is."""

    name: str
    kind: Kind
    idx: tuple[int, ...]


@dataclass(frozen=True)
class MultiCupedResult:
    """CUPED++: `theta` per covariate in `covariates` (those left after dropping the ones
    no variant can use), the adjusted and unadjusted values per variant."""

    covariates: tuple[str, ...]
    theta: tuple[float, ...]
    adjusted: tuple[MetricValue, ...]
    unadjusted: tuple[MetricValue, ...]

    def variance_reduction(self, i: int) -> float:
        before = self.unadjusted[i].unit_variance
        return 1.0 - self.adjusted[i].unit_variance / before if before > 0 else 0.0


def cuped_multi(kind: Kind, variants: list[Moments], post_idx, covariates: list[Covariate]) -> MultiCupedResult:
    """Regression adjustment on several covariates (CUPED++, as Eppo's): with X the
    linearised covariates and Y the linearised metric,

        θ = (Σ_v (n_v−1)·Σxx_v)⁺ · Σ_v (n_v−1)·Σxy_v       (pooled within-variant slopes)
        v_adj = v − θ·(x̄_v − x̄_pooled),  unit variance vy − 2θ·cxy + θᵀΣxxθ (≥ 0)

    For a mean metric on raw covariates this is the treatment coefficient of the OLS fit
    Y ~ variant dummies + X (Frisch–Waugh–Lovell). The solve is a pseudo-inverse on the
    covariates scaled to unit variance: a covariate without variance gets θ = 0, and
    duplicated or collinear ones share one slope, rather than failing. A covariate whose
    value is undefined in some variant (a ratio with no pre-period denominator) is dropped.
    With one covariate it gives the same numbers as `cuped` wherever every variant can use it.
    """
    post_idx = list(post_idx)
    k = len(post_idx)
    # Values and gradients of every covariate in every variant, and which are usable.
    per_variant = []
    for m in variants:
        post = kind.value(m.select(post_idx))
        xs = [c.kind.value(m.select(c.idx)) for c in covariates]
        per_variant.append((post, xs))
    pooled = variants[0]
    for m in variants[1:]:
        pooled = pooled + m
    pooled_x = [c.kind.value(pooled.select(c.idx)).value for c in covariates]
    usable = [j for j in range(len(covariates))
              if np.isfinite(pooled_x[j]) and all(np.isfinite(xs[j].value) and np.all(np.isfinite(xs[j].gradient))
                                                  for _, xs in per_variant)]
    p = len(usable)
    parts = []
    sxx, sxy = np.zeros((p, p)), np.zeros(p)
    for m, (post, xs) in zip(variants, per_variant, strict=True):
        # One linear map from the raw variables (post, then each covariate's) to (Y, X_1..X_p).
        idx = post_idx + [i for j in usable for i in covariates[j].idx]
        cov = m.select(idx).covariance
        if not np.all(np.isfinite(cov)):
            raise ValueError("the moments lack a product between the metric and a covariate")
        lin = np.zeros((p + 1, len(idx)))
        lin[0, :k] = post.gradient
        at = k
        for row, j in enumerate(usable, start=1):
            width = len(covariates[j].idx)
            lin[row, at:at + width] = xs[j].gradient
            at += width
        c = lin @ cov @ lin.T
        vy, cxy, cxx = float(c[0, 0]), c[0, 1:], c[1:, 1:]
        parts.append((m.n, post, np.array([xs[j].value for j in usable]), vy, cxy, cxx))
        if m.n > 1:
            sxx += (m.n - 1) * cxx
            sxy += (m.n - 1) * cxy
    theta = _solve(sxx, sxy)
    centre = np.array([pooled_x[j] for j in usable])
    adjusted, unadjusted = [], []
    for n, post, x, vy, cxy, cxx in parts:
        value = post.value - float(theta @ (x - centre)) if p else post.value
        unit_var = max(vy - 2 * float(theta @ cxy) + float(theta @ cxx @ theta), 0.0) if p else vy
        adjusted.append(MetricValue(kind, n, float(value), float(unit_var), post.gradient))
        unadjusted.append(MetricValue(kind, n, post.value, vy, post.gradient))
    return MultiCupedResult(covariates=tuple(covariates[j].name for j in usable),
                            theta=tuple(float(t) for t in theta), adjusted=tuple(adjusted),
                            unadjusted=tuple(unadjusted))


def _solve(sxx: np.ndarray, sxy: np.ndarray) -> np.ndarray:
    """θ = Sxx⁺·Sxy on the covariates scaled to unit variance; 0 for one without variance."""
    if sxy.size == 0:
        return np.zeros(0)
    scale = np.sqrt(np.clip(np.diag(sxx), 0.0, None))
    keep = scale > 1e-12 * max(float(scale.max()), 1e-300)
    theta = np.zeros_like(sxy)
    if keep.any():
        s = scale[keep]
        corr = sxx[np.ix_(keep, keep)] / np.outer(s, s)
        theta[keep] = (np.linalg.pinv(corr, rcond=1e-10, hermitian=True) @ (sxy[keep] / s)) / s
    return theta
